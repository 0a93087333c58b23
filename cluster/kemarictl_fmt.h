/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kemarictl's output formats: DRBD-style status paragraphs, JSON, and
 * events2-style event lines. Kept apart from the IPC code so that the
 * formats can be read (and changed) in one place.
 */
#ifndef KEMARICTL_FMT_H
#define KEMARICTL_FMT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "km_ipc.h"

/* kc_print_status() - one paragraph per VM, `key:value` words. */
void kc_print_status(FILE *f, const struct km_ipc_status *st);

/* kc_status_json() - the same as a JSON object (caller puts it). */
struct json_object *kc_status_json(const struct km_ipc_status *st);

/*
 * kc_print_event() - print @ev as `exists|change|destroy OBJECT key:value`
 * lines; a change prints only the keys that differ from what was printed
 * for that object before. Returns false for the end-of-dump marker after
 * printing "exists -".
 */
bool kc_print_event(FILE *f, const struct km_ipc_event *ev, bool timestamps);

#endif /* KEMARICTL_FMT_H */
