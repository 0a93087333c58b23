// SPDX-License-Identifier: GPL-2.0
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void km_tap_policy_default(struct km_tap_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->devices = true;
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > 0xffff)
		return -EINVAL;
	*port = v;
	return 0;
}

static int parse_range(struct km_tap_policy *p, char *tok, struct km_err *err)
{
	char *dash = strchr(tok, '-');
	uint16_t first, last;

	if (dash)
		*dash = '\0';
	if (parse_port(tok, &first) < 0 ||
	    parse_port(dash ? dash + 1 : tok, &last) < 0 || last < first) {
		km_err_set(err,
			   "bad tap spec item '%s%s%s': use devices, all, "
			   "none, a port (0x3f8) or a range (0xf0-0xff)",
			   tok, dash ? "-" : "", dash ? dash + 1 : "");
		return -EINVAL;
	}
	if (p->nranges == KM_TAP_MAX_RANGES) {
		km_err_set(err,
			   "too many port ranges in the tap spec (at most "
			   "%d)",
			   KM_TAP_MAX_RANGES);
		return -EINVAL;
	}
	p->ranges[p->nranges].first = first;
	p->ranges[p->nranges].last = last;
	p->nranges++;
	return 0;
}

int km_tap_policy_parse(struct km_tap_policy *p, const char *spec,
			struct km_err *err)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	for (tok = strtok_r(copy, ",", &save); tok && r == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "devices"))
			p->devices = true;
		else if (!strcmp(tok, "all"))
			p->all_out = true;
		else if (!strcmp(tok, "none"))
			memset(p, 0, sizeof(*p));
		else
			r = parse_range(p, tok, err);
	}
	free(copy);
	return r;
}

bool km_tap_policy_match(const struct km_tap_policy *p, uint16_t port,
			 bool device_tapped)
{
	unsigned int i;

	if (p->all_out || (p->devices && device_tapped))
		return true;
	for (i = 0; i < p->nranges; i++)
		if (port >= p->ranges[i].first && port <= p->ranges[i].last)
			return true;
	return false;
}
