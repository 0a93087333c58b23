#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ocf:kemari:vm under real pacemaker (2.1) in the namespace pair: each host
# runs corosync, kemarid and pacemakerd, with its own CIB directory
# (/var/lib/pacemaker bind-mounted per host) and the agent as the only OCF
# provider. The CIB is written before pacemaker starts: dc-deadtime 2 s
# (the 20 s default is most of the start-up), stonith-enabled=false
# (kemarid fences by itself), and web1 as a promotable clone. Checks:
# pacemaker starts both instances and promotes one (the agent's promotion
# scores), kemarid runs the VM there in Lockstep; a ban of the promoted
# role moves it with a lossless switchover; no failed actions. Last, kemarid
# fails over by itself (a drill): pacemaker's next monitor of the old
# promoted instance fails (it expected 8), and pacemaker settles on
# kemarid's placement without acting against the VM.
. "$(dirname "$0")/pair.sh"
for t in pacemakerd crm_mon crm_resource crm_master xmllint; do
	command -v "$t" > /dev/null || fail "$t not found: run scripts/deps.sh"
done

write_cib() {
	cat <<EOX
<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="o-dc-deadtime" name="dc-deadtime" value="2s"/>
        <nvpair id="o-stonith" name="stonith-enabled" value="false"/>
        <nvpair id="o-recheck" name="cluster-recheck-interval" value="1min"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <clone id="web1-clone">
        <meta_attributes id="web1-clone-meta">
          <nvpair id="web1-promotable" name="promotable" value="true"/>
          <nvpair id="web1-promoted-max" name="promoted-max" value="1"/>
          <nvpair id="web1-clone-max" name="clone-max" value="2"/>
          <nvpair id="web1-clone-node-max" name="clone-node-max" value="1"/>
        </meta_attributes>
        <primitive id="web1" class="ocf" provider="kemari" type="vm">
          <instance_attributes id="web1-params">
            <nvpair id="web1-vm" name="vm" value="web1"/>
            <nvpair id="web1-config" name="config" value="$W/alpha/kemari.conf"/>
            <nvpair id="web1-kemarictl" name="kemarictl" value="$KEMARICTL"/>
            <nvpair id="web1-wait" name="wait" value="20"/>
          </instance_attributes>
          <operations>
            <op id="web1-mon-p" name="monitor" interval="3s" role="Promoted" timeout="20s"/>
            <op id="web1-mon-u" name="monitor" interval="5s" role="Unpromoted" timeout="20s"/>
          </operations>
        </primitive>
      </clone>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
EOX
}

pcmk_up() {
	local n=$1 d=$W/$1/pcmk
	mkdir -p "$d/lib/cib" "$d/lib/pengine" "$d/lib/blackbox" "$d/lib/cores" \
		"$d/log" "$W/ocf/kemari"
	cp "$KEMARI_SRC/config/ocf/vm" "$W/ocf/kemari/vm"
	write_cib > "$d/lib/cib/cib.xml"
	chown -R hacluster:haclient "$d"
	chmod 750 "$d"/lib/*
	chmod 600 "$d/lib/cib/cib.xml"
	on "$n" mount --bind "$d/lib" /var/lib/pacemaker || fail "mount on $n"
	on "$n" mount --bind "$d/log" /var/log/pacemaker || fail "mount on $n"
	on "$n" mount --bind "$W/ocf" /usr/lib/ocf/resource.d || fail "mount on $n"
	kmns_bg "$n" "$d/pacemakerd.out" env \
		PCMK_logfile=/var/log/pacemaker/pacemaker.log pacemakerd --foreground
	echo "$KMNS_PID" > "$W/$n/pacemakerd.pid"
}

# Stop the subdaemons by PID at teardown too: pacemakerd killed with
# SIGKILL would leave them running.
pcmk_track() {
	local n p
	for n in $NODES; do
		for p in $(ps -o pid= --ppid "$(pid_of "$n" pacemakerd)"); do
			kmns_track "$p"
		done
	done
}

mon_xml() { on alpha crm_mon -1 --output-as=xml 2>/dev/null; }
promoted_on() {
	mon_xml | xmllint --xpath \
		"string(//clone[@id='web1-clone']/resource[@role='Promoted']/node/@name)" - 2>/dev/null
}
unpromoted_on() {
	mon_xml | xmllint --xpath \
		"string(//clone[@id='web1-clone']/resource[@role='Unpromoted']/node/@name)" - 2>/dev/null
}
promoted_is() { [ "$(promoted_on)" = "$1" ] && [ "$(unpromoted_on)" = "${PEER[$1]}" ]; }
no_failures() {
	[ "$(mon_xml | xmllint --xpath 'count(//failures/failure)' - 2>/dev/null)" = 0 ]
}

pcmk_dump() {
	local n
	for n in $NODES; do
		echo "---- $n: pacemaker.log (errors, last 20)"
		grep -E "error|warning|crit" "$W/$n/pcmk/log/pacemaker.log" 2>/dev/null |
			tail -20 | sed 's/^/    /'
	done
	on alpha crm_mon -1 2>&1 | sed 's/^/    /'
}
fail() { log "FAIL: $*"; pcmk_dump; pair_dump; exit 1; }

pair_up
t0=$(now)
for n in $NODES; do
	pcmk_up "$n"
done
wait_for 60 eval '[ -n "$(promoted_on)" ]' || fail "pacemaker promoted nothing"
t1=$(now)
pcmk_track
p=$(promoted_on)
wait_for 20 lockstep "$p" || fail "pacemaker promoted $p but kemarid is not in Lockstep there"
wait_for 20 promoted_is "$p" || fail "the other instance is not Unpromoted"
no_failures || fail "failed actions after start"
log "pacemaker: DC, start and promote on $p in $(ms "$t0" "$t1") ms; kemarid Lockstep with $p Primary"

s=${PEER[$p]}
gen=$(field "$s" web1 generation)
t0=$(now)
# No --lifetime: 2.1.5 then writes a rule, and ignores the role on it.
on alpha crm_resource --ban --promoted --resource web1-clone --node "$p" \
	> /dev/null 2>&1 || fail "crm_resource --ban"
wait_for 60 promoted_is "$s" || fail "the promoted role did not move to $s"
wait_for 20 lockstep "$s" || fail "kemarid is not in Lockstep with $s Primary"
t1=$(now)
[ "$(field "$s" web1 generation)" = $((gen + 1)) ] || fail "generation"
no_failures || fail "failed actions after the move"
grep -q "$p demote web1" "$W/backend.log" || fail "no demote on $p"
[ -e "$W/fence.log" ] && fail "something was fenced"
log "ban: promoted role moved $p -> $s by a switchover in $(ms "$t0" "$t1") ms, no failed actions"
on alpha crm_resource --clear --resource web1-clone > /dev/null 2>&1

failures() { mon_xml | xmllint --xpath 'count(//failures/failure)' - 2>/dev/null; }
t0=$(now)
ctl "$s" drill web1 > /dev/null || fail "drill on $s"
is "$p" web1 role Primary || fail "kemarid did not fail over to $p"
wait_for 30 promoted_is "$p" || fail "pacemaker did not settle on $p"
t1=$(now)
[ "$(failures)" = 1 ] || fail "expected one failed monitor, have $(failures)"
mon_xml | xmllint --xpath "//failures/failure[@node='$s'][@exitstatus='ok']" - \
	> /dev/null 2>&1 || fail "the failure is not $s's monitor returning ok"
grep -c "$p promote web1" "$W/backend.log" | grep -qx 2 ||
	fail "pacemaker acted on the VM: $(tail -4 "$W/backend.log")"
actions=$(wc -l < "$W/backend.log")
on alpha crm_resource --cleanup --resource web1-clone > /dev/null 2>&1
wait_for 20 no_failures || fail "failures left after cleanup"
wait_for 20 promoted_is "$p" || fail "the cleanup moved the promoted role"
[ "$(wc -l < "$W/backend.log")" = "$actions" ] ||
	fail "the cleanup acted on the VM: $(tail -2 "$W/backend.log")"
is "$p" web1 role Primary || fail "kemarid's Primary changed"
log "kemarid's own failover $s -> $p: pacemaker settled on $p in" \
    "$(ms "$t0" "$t1") ms after one failed monitor on $s (cleared by --cleanup)"

# Leave nothing to pacemaker's own shutdown (it would move the VM): it
# stops monitoring, then exits.
on alpha crm_attribute --type crm_config --name maintenance-mode --update true \
	> /dev/null 2>&1
for n in $NODES; do
	kmns_stop "$(pid_of "$n" pacemakerd)" 20
done
log "PASS"
