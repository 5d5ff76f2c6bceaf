/*
 * Fuzz target for reading an event back from JSON (evrec_from_json, what
 * the CLI does with every event the API sends).
 *
 * Every input is parsed as JSON and, when it is, handed to evrec_from_json.
 * Beyond the sanitizers' checks, the target asserts its promises and calls
 * abort() when one fails:
 *
 *  - it returns 0 or -VIGIL_EINVAL, never anything else;
 *  - an event it accepts has a known type and states, a node id as the
 *    type requires, durations that are not negative (since_last -1 for
 *    never) and a level that is not NaN;
 *  - such an event renders, and goes through evrec_to_json and back again
 *    to the same text line (durations short enough, under 2^50 ns, to come
 *    back to the nanosecond).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/evlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Durations that come back from seconds as doubles to the nanosecond. */
#define EXACT_NS_MAX (INT64_C(1) << 50)

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_event(const struct evrec *r)
{
    const struct vigil_event *ev = &r->ev;
    check(ev->type == VIGIL_EVENT_STATE || ev->type == VIGIL_EVENT_PAUSE);
    check(vigil_state_parse(vigil_state_name(ev->old_state)) == (int)ev->old_state);
    check(vigil_state_parse(vigil_state_name(ev->new_state)) == (int)ev->new_state);
    size_t len = strlen(ev->node);
    check(ev->type == VIGIL_EVENT_PAUSE ? len == 0 : vigil_id_valid(ev->node, len));
    check(ev->reason != NULL);
    check(ev->since_last >= -1 && ev->mean >= 0 && ev->std_dev >= 0);
    check(!isnan(ev->level) && !isnan(ev->threshold));

    char line[1024], again[1024];
    evrec_format_text(r, line, sizeof(line));
    if (ev->since_last >= EXACT_NS_MAX || ev->mean >= EXACT_NS_MAX || ev->std_dev >= EXACT_NS_MAX)
        return;
    json_t *o = evrec_to_json(r);
    check(o != NULL);
    struct evrec back;
    check(evrec_from_json(o, &back) == 0);
    evrec_format_text(&back, again, sizeof(again));
    check(strcmp(line, again) == 0);
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *o = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!o)
        return 0;
    struct evrec r;
    int rc = evrec_from_json(o, &r);
    check(rc == 0 || rc == -VIGIL_EINVAL);
    if (rc == 0)
        check_event(&r);
    json_decref(o);
    return 0;
}
