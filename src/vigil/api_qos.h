/*
 * The quality of service of a node in the API: what its detector settings
 * predict for the node's measured heartbeat stream beside what the
 * monitor observed (docs/tuning.md), and warnings when the measured
 * stream makes the settings unsafe. Part of the node JSON of api.c.
 */
#ifndef VIGIL_API_QOS_H
#define VIGIL_API_QOS_H

#include <jansson.h>
#include <vigil/vigil.h>

#include "core/qos.h"

/*
 * Heartbeats a node must have sent before its measured statistics are
 * trusted for warnings: a few dozen intervals give a usable deviation.
 */
#define API_QOS_MIN_HEARTBEATS 20

/*
 * Rates of mistakes above which the settings are called unsafe: one false
 * suspicion per node per hour (each holds actions back), one false death
 * per node per day (each runs the actions).
 */
#define API_QOS_SUSPECT_RATE_MAX (1.0 / 3600)
#define API_QOS_DEATH_RATE_MAX   (1.0 / 86400)

/* The stream model of node n (interval, jitter, loss) from what the monitor measured. */
void api_qos_net(const struct vigil_monitor *m, const struct vigil_node *n,
                 struct vigil__qos_net *net);

/* {"model":..., "silence_to_suspect_s":..., "predicted":{...}, "observed":{...}}. New reference. */
json_t *api_qos_json(const struct vigil_monitor *m, const struct vigil_node *n, vigil_time_t now);

/* The node's warnings: an array of strings (empty when the settings are safe). New reference. */
json_t *api_qos_warnings(const struct vigil_monitor *m, const struct vigil_node *n);

#endif
