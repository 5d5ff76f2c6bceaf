/* libvigil: heartbeat-based failure detection. The one header to include. */
#ifndef VIGIL_VIGIL_H
#define VIGIL_VIGIL_H

#define VIGIL_VERSION_STRING "0.1.0"

#include "common.h"
#include "wire.h"
#include "detector.h"
#include "monitor.h"
#include "sender.h"
#include "swim.h"

#endif
