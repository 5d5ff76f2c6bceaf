/*
 * What libvigil's own code shares about the detectors beyond the public
 * <vigil/detector.h>.
 */
#ifndef VIGIL_CORE_DETECTOR_INT_H
#define VIGIL_CORE_DETECTOR_INT_H

#include <vigil/detector.h>

/*
 * vigil_detector_crossing, with the phi quantile of threshold
 * (vigil_phi_quantile(threshold)) computed once by the caller instead of
 * on every call: the same answer, exactly. The monitor keeps the quantile
 * of its suspicion threshold, and re-keys deadlines with it.
 */
vigil_time_t vigil__detector_crossing_q(const struct vigil_detector_config *cfg,
                                        const struct vigil_detector *d, double threshold,
                                        double quantile);

#endif
