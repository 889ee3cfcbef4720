# Shared steps of the stage-1 and compute /init (busybox ash). Sourced, never run.
# Every step prints one "bootfarm: …" line on the console; tests and operators read those lines.
# Nothing here reboots: a node that fails keeps a console and says why (a reboot loop hides the error and
# hammers the DHCP/TFTP/HTTP servers of the whole rack). A step that waits on a server (DHCP, iSCSI) is tried again
# in place by bf_until, with a console one keypress away; a failed agent waits for a person (bf_rescue).

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
AGENT=/bin/bootfarm-agent
AGENT_LOG=/var/log/bootfarm-agent.log

bf_log() { echo "bootfarm: $*"; }

bf_mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }

bf_early() {
  [ -e /proc/self ] || mount -t proc -o nosuid,nodev,noexec proc /proc
  bf_mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  bf_mounted /dev || mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
  mkdir -p /dev/pts /dev/shm
  bf_mounted /dev/pts || mount -t devpts -o nosuid,noexec,gid=5,mode=620 devpts /dev/pts
  bf_mounted /run || mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
  # securityfs (built in) holds the lockdown mode the agent reports; a kernel without it fails quietly
  [ -d /sys/kernel/security ] && ! bf_mounted /sys/kernel/security && mount -t securityfs -o nosuid,nodev,noexec securityfs /sys/kernel/security 2>/dev/null || :
  mkdir -p /run/bootfarm-init /run/lldpd /var/log /var/lib/bootfarm /tmp
  chmod 1777 /tmp
  [ -e /dev/null ] || mknod -m 666 /dev/null c 1 3
  ln -sf /proc/self/fd /dev/fd 2>/dev/null
  echo 0 > /proc/sys/kernel/printk_ratelimit 2>/dev/null
  # Keep kernel chatter (module probes) from interleaving with our lines on the serial console.
  echo '4 4 1 7' > /proc/sys/kernel/printk 2>/dev/null
  . /etc/bootfarm/image
  hostname "bootfarm-${BOOTFARM_IMAGE}" 2>/dev/null
  bf_log "${BOOTFARM_IMAGE} /init started (image ${BOOTFARM_IMAGE_VERSION}, kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s)"
}

# Kernel command line → shell variables. Parameters (written by the server's iPXE script or the stage-1 agent):
#   bootfarm.server=http://IP:PORT bootfarm.token=T bootfarm.uuid=U bootfarm.mode=stage1|compute
#   (T is this OS's credential: stage-1's boot-attempt token, or the compute OS's node credential; both post events)
#   BOOTIF=01-aa-bb-cc-dd-ee-ff (iPXE ${netX/mac} with the ARP hardware type 01 in front, as pxelinux does)
#   ip=dhcp | ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf> (Documentation/admin-guide/nfs/nfsroot.rst)
#   ip=auto6 (dracut's name): IPv6 autoconfiguration; also chosen when bootfarm.server names an IPv6 literal
#   (http://[fd00::1]:8080, RFC 3986 §3.2.2), so an IPv6-only boot network needs nothing else on the command line
#   bootfarm.iscsi.{portal,target,lun,initiator,user,password}=…
#   initrd=NAME is added by iPXE under EFI and ignored here.
bf_parse_cmdline() {
  BF_SERVER= BF_TOKEN= BF_UUID= BF_MODE= BF_BOOTIF= BF_IP= BF_DEBUG=
  BF_ISCSI_PORTAL= BF_ISCSI_TARGET= BF_ISCSI_LUN=0 BF_ISCSI_INITIATOR= BF_ISCSI_USER= BF_ISCSI_PASSWORD=
  set -f  # values are data: no globbing of '*' or '?' in them
  for w in $(cat /proc/cmdline); do
    case "$w" in
      bootfarm.server=*) BF_SERVER="${w#*=}" ;;
      bootfarm.token=*) BF_TOKEN="${w#*=}" ;;
      bootfarm.uuid=*) BF_UUID="${w#*=}" ;;
      bootfarm.mode=*) BF_MODE="${w#*=}" ;;
      bootfarm.debug=*) BF_DEBUG="${w#*=}" ;;
      bootfarm.iscsi.portal=*) BF_ISCSI_PORTAL="${w#*=}" ;;
      bootfarm.iscsi.target=*) BF_ISCSI_TARGET="${w#*=}" ;;
      bootfarm.iscsi.lun=*) BF_ISCSI_LUN="${w#*=}" ;;
      bootfarm.iscsi.initiator=*) BF_ISCSI_INITIATOR="${w#*=}" ;;
      bootfarm.iscsi.user=*) BF_ISCSI_USER="${w#*=}" ;;
      bootfarm.iscsi.password=*) BF_ISCSI_PASSWORD="${w#*=}" ;;
      BOOTIF=*) BF_BOOTIF="${w#*=}" ;;
      ip=*) BF_IP="${w#*=}" ;;
    esac
  done
  set +f
  BF_SERVER="${BF_SERVER%/}"
  [ -n "$BF_MODE" ] || BF_MODE="$BOOTFARM_IMAGE"
  [ -n "$BF_UUID" ] || BF_UUID="$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"
  [ "$BF_DEBUG" = 1 ] && set -x
  bf_log "cmdline server=${BF_SERVER:-none} uuid=${BF_UUID:-unknown} mode=$BF_MODE bootif=${BF_BOOTIF:-none} ip=${BF_IP:-none}"
}

# Loads /etc/bootfarm/modules.load ("name path" lines, dependencies first, resolved from modules.dep at build time). A driver
# without its hardware (ipmi_si on a VM) refuses to load: that is reported, not fatal.
bf_load_modules() {
  ok=0 failed=0 failed_names= skipped=0 skipped_names=
  kver="$(uname -r)"
  while read -r m f; do
    [ -n "$m" ] || continue
    # efivarfs refuses to load without EFI runtime services (-ENODEV): on a BIOS boot it is not a failure
    if [ "$m" = efivarfs ] && [ ! -d /sys/firmware/efi ]; then skipped=$((skipped + 1)); skipped_names="$skipped_names $m"; continue; fi
    if grep -q "^$m " /proc/modules; then ok=$((ok + 1)); continue; fi
    if insmod "/lib/modules/$kver/$f" 2>/tmp/insmod.err; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1)); failed_names="$failed_names $m"
      bf_log "module $m not loaded: $(cat /tmp/insmod.err 2>/dev/null)"
    fi
  done < /etc/bootfarm/modules.load
  bf_log "modules loaded: $ok ok, $failed not loaded${failed_names:+ (}${failed_names# }${failed_names:+)}${skipped_names:+, $skipped skipped (}${skipped_names# }${skipped_names:+: not an EFI boot)}"
  # The agent reads Secure Boot from efivars and the lockdown mode from securityfs (agent/facts/secureboot.ts).
  # efivarfs is a module in Debian's kernel (CONFIG_EFIVAR_FS=m), so it mounts only after the modules are in: mounted
  # in bf_early it failed quietly and a Secure Boot node reported firmware.secureBoot "unknown" (measured on the
  # rack's Secure Boot node). Read-only; a BIOS boot has no /sys/firmware/efi and skips it.
  [ -d /sys/firmware/efi/efivars ] && ! bf_mounted /sys/firmware/efi/efivars && mount -t efivarfs -o ro,nosuid,nodev,noexec efivarfs /sys/firmware/efi/efivars 2>/dev/null || :
  grep -q '^virtio_net ' /proc/modules && bf_log "module virtio_net is loaded"
}

# The NIC that booted: BOOTIF's MAC, else ip='s device field, else the first NIC with a carrier, else the first.
bf_pick_nic() {
  want_mac=
  if [ -n "$BF_BOOTIF" ]; then
    want_mac="$(echo "${BF_BOOTIF#??-}" | tr 'A-F-' 'a-f:')"
  fi
  want_dev=
  case "$BF_IP" in *:*) want_dev="$(echo "$BF_IP" | cut -d: -f6)" ;; esac
  BF_IFACE=
  # Drivers probe asynchronously after insmod: poll for the interface, bounded (about 10 s).
  tries=0
  while [ $tries -lt 50 ]; do
    for d in /sys/class/net/*; do
      n="${d##*/}"
      [ "$n" = lo ] && continue
      [ -e "$d/device" ] || continue
      if [ -n "$want_mac" ]; then
        [ "$(cat "$d/address")" = "$want_mac" ] && BF_IFACE="$n" && break
      elif [ -n "$want_dev" ]; then
        [ "$n" = "$want_dev" ] && BF_IFACE="$n" && break
      else
        ip link set "$n" up 2>/dev/null
        [ -z "$BF_IFACE" ] && BF_IFACE="$n"
        [ "$(cat "$d/carrier" 2>/dev/null)" = 1 ] && BF_IFACE="$n" && break
      fi
    done
    [ -n "$BF_IFACE" ] && break
    tries=$((tries + 1))
    sleep 0.2
  done
  if [ -z "$BF_IFACE" ]; then
    bf_log "no NIC found (bootif=${want_mac:-none} ip-device=${want_dev:-none}); interfaces: $(ls /sys/class/net | tr '\n' ' ')"
    return 1
  fi
  bf_log "boot NIC $BF_IFACE ($(cat /sys/class/net/$BF_IFACE/address), driver $(basename "$(readlink /sys/class/net/$BF_IFACE/device/driver)" 2>/dev/null))"
}

# IPv6 rather than DHCPv4: ip=auto6 or ip=dhcp6 asks for it, and a server URL with an IPv6 literal needs it (a node that
# reaches its server at http://[addr]:port is on an IPv6 boot network; DHCPv4 there only costs its timeout, ~12 s).
bf_want_ipv6() {
  case "$BF_IP" in auto6|dhcp6) return 0 ;; esac
  case "$BF_SERVER" in http://\[*|https://\[*) return 0 ;; esac
  return 1
}

# The first usable global IPv6 address on $1 ("addr/prefix"), empty if none. Tentative ones (DAD still running,
# RFC 4862 §5.4) cannot be bound yet and dadfailed ones never: neither counts. Works with busybox's ip and iproute2
# (stage-1 has the first, compute the second; both print one line per address with -o).
bf_ipv6_global() {
  ip -6 -o addr show dev "$1" scope global 2>/dev/null | grep -v -e tentative -e dadfailed | awk '{print $4}' | head -n 1
}

# IPv6 on the boot NIC by stateless autoconfiguration (RFC 4862): the kernel sends router solicitations when the link
# comes up and forms an address from the router advertisement's autonomous prefix. Debian's busybox-static has no
# udhcpc6, so this OS takes no DHCPv6 lease of its own: the boot link's RA must carry the prefix with the A flag (the
# Managed flag beside it is what iPXE and UEFI firmware need; README "Firmware and boot paths"). Waits up to BF_NET6_WAIT seconds
# (default 30: the kernel's three solicitations 4 s apart, radvd's answer, then DAD), polling every 0.2 s.
bf_net_up6() {
  for k in disable_ipv6=0 accept_ra=1 autoconf=1; do
    echo "${k#*=}" > "${BF_PROC_NET6:-/proc/sys/net/ipv6/conf}/$BF_IFACE/${k%=*}" 2>/dev/null
  done
  tries=0 max=$(( ${BF_NET6_WAIT:-30} * 5 ))
  addr=
  while [ $tries -lt $max ]; do
    addr="$(bf_ipv6_global "$BF_IFACE")"
    [ -n "$addr" ] && break
    tries=$((tries + 1))
    sleep 0.2
  done
  if [ -z "$addr" ]; then
    bf_log "no IPv6 address on $BF_IFACE after ${BF_NET6_WAIT:-30} s (the boot link needs a router advertisement with an autonomous prefix); addresses: $(ip -6 -o addr show dev "$BF_IFACE" 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"
    return 1
  fi
  router="$(ip -6 route show default dev "$BF_IFACE" 2>/dev/null | awk '$2 == "via" {print $3; exit}')"
  printf 'BOOTFARM_IFACE=%s\nBOOTFARM_IP=%s\nBOOTFARM_ROUTER=%s\n' "$BF_IFACE" "$addr" "$router" > "${BOOTFARM_INIT_RUN:-/run/bootfarm-init}/net.env"
  bf_log "nic $BF_IFACE up, IPv6 $addr (autoconfigured from a router advertisement in $((tries / 5)).$((tries % 5 * 2)) s), router ${router:-none}"
}

# Address on the boot NIC: IPv6 autoconfiguration (bf_want_ipv6), static from ip=<client>:…:<netmask>… or DHCP
# (udhcpc keeps renewing in the background).
bf_net_up() {
  bf_pick_nic || return 1
  ip link set lo up
  ip link set "$BF_IFACE" up
  if bf_want_ipv6; then
    bf_net_up6
    return
  fi
  client="$(echo "$BF_IP" | cut -d: -f1)"
  case "$BF_IP" in
    *:*) autoconf="$(echo "$BF_IP" | cut -d: -f7)" ;;
    *) autoconf="$BF_IP" ;;
  esac
  if [ -n "$client" ] && [ "$client" != dhcp ] && { [ "$autoconf" = off ] || [ "$autoconf" = none ] || [ -z "$autoconf" ]; } && echo "$BF_IP" | grep -q ':'; then
    gw="$(echo "$BF_IP" | cut -d: -f3)"; mask="$(echo "$BF_IP" | cut -d: -f4)"
    prefix="$(ipcalc -p "$client" "${mask:-255.255.255.0}" | cut -d= -f2)"
    ip -4 addr add "$client/$prefix" dev "$BF_IFACE" || return 1
    [ -n "$gw" ] && ip -4 route add default via "$gw" dev "$BF_IFACE"
    printf 'BOOTFARM_IFACE=%s\nBOOTFARM_IP=%s/%s\nBOOTFARM_ROUTER=%s\n' "$BF_IFACE" "$client" "$prefix" "$gw" > /run/bootfarm-init/net.env
    bf_log "nic $BF_IFACE up, static $client/$prefix"
    return 0
  fi
  # -n: give up after the tries instead of backgrounding without an address; once bound udhcpc forks and renews.
  if udhcpc -i "$BF_IFACE" -s /etc/udhcpc/default.script -t 6 -T 2 -n -p /run/udhcpc.pid -V "bootfarm-$BOOTFARM_IMAGE" >/tmp/udhcpc.out 2>&1; then
    grep '^bootfarm:' /tmp/udhcpc.out
    bf_log "nic $BF_IFACE up, address $(ip -4 -o addr show dev "$BF_IFACE" | awk '{print $4}' | head -n1)"
    return 0
  fi
  cat /tmp/udhcpc.out
  bf_log "dhcp on $BF_IFACE got no lease"
  return 1
}

bf_start_lldpd() {
  # lldpd drops privileges to _lldpd and chroots into /run/lldpd (Debian build). It listens on every physical NIC, but
  # a NIC that is down receives nothing: the other NICs' links come up first (no address), so the agent sees the
  # switch port of each (IEEE 802.1AB), which the cabling check and the bond's member choice need.
  for d in /sys/class/net/*; do
    n="${d##*/}"
    { [ "$n" = lo ] || [ "$n" = "$BF_IFACE" ] || [ ! -e "$d/device" ]; } && continue
    ip link set "$n" up 2>/dev/null || bf_log "link up $n failed"
  done
  mkdir -p /run/lldpd
  if lldpd >/tmp/lldpd.out 2>&1; then
    bf_log "lldpd started (pid $(cat /run/lldpd.pid 2>/dev/null))"
  else
    bf_log "lldpd failed: $(tail -n 3 /tmp/lldpd.out | tr '\n' ' ')"
  fi
}

# JSON string body from stdin: escapes backslash, quote, tab and newlines; drops other control characters.
bf_json_escape() {
  tr -d '\000-\010\013\014\016-\037\r' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

# POST /api/v1/agent/:uuid/events {phase: agent-error, …} (server/contract/agent.ts AgentEvent). Best effort.
bf_post_error() {
  stage="$1"; message="$2"
  if [ -z "$BF_SERVER" ] || [ -z "$BF_UUID" ]; then
    bf_log "agent-error not posted: no bootfarm.server or uuid"
    return 1
  fi
  tail_json="$(tail -n 20 "$AGENT_LOG" 2>/dev/null | tail -c 2000 | bf_json_escape)"
  msg_json="$(printf '%s' "$message" | head -c 1000 | bf_json_escape)"
  body="{\"phase\":\"agent-error\",\"message\":\"${msg_json}\",\"data\":{\"image\":\"$BOOTFARM_IMAGE\",\"imageVersion\":\"$BOOTFARM_IMAGE_VERSION\",\"stage\":\"$stage\",\"logTail\":\"${tail_json}\"}}"
  # busybox 1.35 wget crashes with -T (seen on this image): bound it with timeout(1) instead.
  if timeout 10 wget -q -O /tmp/event.out --header 'Content-Type: application/json' \
      ${BF_TOKEN:+--header "Authorization: Bearer $BF_TOKEN"} \
      --post-data "$body" "$BF_SERVER/api/v1/agent/$BF_UUID/events" 2>/tmp/event.err; then
    bf_log "agent-error event posted to $BF_SERVER"
  else
    bf_log "agent-error event not posted: $(cat /tmp/event.err 2>/dev/null | tr '\n' ' ')"
  fi
}

# Report on the console and to the server, then keep a console. Leaving the shell (exit) runs the step again.
bf_rescue() {
  stage="$1"; message="$2"
  echo
  bf_log "FAILED at $stage: $message"
  if [ -s "$AGENT_LOG" ]; then
    echo "----- last 20 lines of $AGENT_LOG -----"
    tail -n 20 "$AGENT_LOG"
    echo "----- end of agent log -----"
  fi
  bf_post_error "$stage" "$message"
  bf_log "rescue console on $(cat /sys/class/tty/console/active 2>/dev/null): the node will not reboot by itself; 'exit' retries"
  bf_console
  bf_log "rescue console closed: retrying"
}

# Runs "$@" until it succeeds. For the steps that depend on a server rather than on this node: the DHCP lease and
# the iSCSI login. That server may be restarting or failing over (a replica cut off from PostgreSQL does not answer
# DHCP), and a node left in a console for it waits for a person who is not there at 3 a.m. (the HA rack lost a node
# that way). The first failure is reported as bf_rescue reports it (console line + agent-error event, best effort);
# then the wait between tries doubles from BF_RETRY_FIRST (5 s) to BF_RETRY_MAX (60 s), spread over ×0.5–1.5 so a
# rack that lost its server together does not come back in step. Enter on the console opens the rescue shell.
# $2 is expanded after each failure ('$BF_ISCSI_ERROR' names the error the step just set).
bf_until() {
  bfu_stage="$1"; bfu_why="$2"; shift 2
  bfu_wait="${BF_RETRY_FIRST:-5}"; bfu_tries=0
  until "$@"; do
    bfu_tries=$((bfu_tries + 1))
    eval "bfu_msg=\"$bfu_why\""
    if [ "$bfu_tries" = 1 ]; then
      echo
      bf_log "FAILED at $bfu_stage: $bfu_msg"
      bf_post_error "$bfu_stage" "$bfu_msg"
    else
      bf_log "$bfu_stage still failing (try $bfu_tries): $bfu_msg"
    fi
    bfu_secs=$((bfu_wait / 2 + ${RANDOM:-0} % (bfu_wait + 1)))
    bf_log "trying $bfu_stage again in $bfu_secs s; press Enter for a rescue shell"
    bfu_start=$(cut -d. -f1 /proc/uptime)
    if read -t "$bfu_secs" _ 2>/dev/null; then
      bf_console
    else
      # no console input at all (stdin at EOF) returns at once: still wait, never spin
      bfu_left=$((bfu_start + bfu_secs - $(cut -d. -f1 /proc/uptime)))
      [ "$bfu_left" -gt 0 ] && sleep "$bfu_left"
    fi
    bfu_wait=$((bfu_wait * 2))
    [ "$bfu_wait" -gt "${BF_RETRY_MAX:-60}" ] && bfu_wait="${BF_RETRY_MAX:-60}"
  done
  [ "$bfu_tries" = 0 ] || bf_log "$bfu_stage: ok after $((bfu_tries + 1)) tries"
}

# A shell on the console. cttyhack gives it the real console as its controlling tty (job control, ^C) on ttyS0 or
# tty0. If even that cannot start (a damaged image), a plain shell; and never spin: a retry loop that returns at
# once would flood the console and the server.
bf_console() {
  started=$(cut -d. -f1 /proc/uptime 2>/dev/null || echo 0)
  if command -v setsid >/dev/null && command -v cttyhack >/dev/null; then setsid cttyhack sh -l; else sh -l; fi
  now=$(cut -d. -f1 /proc/uptime 2>/dev/null || echo 0)
  [ $((now - started)) -ge 2 ] || sleep 10
}

# Runs the agent in the foreground, its output on the console and in $AGENT_LOG; returns its exit code.
bf_run_agent() {
  mode="$1"
  [ -f /run/bootfarm-init/net.env ] && . /run/bootfarm-init/net.env
  export BOOTFARM_MODE="$mode" BOOTFARM_SERVER="$BF_SERVER" BOOTFARM_TOKEN="$BF_TOKEN" BOOTFARM_UUID="$BF_UUID"
  export BOOTFARM_IFACE BOOTFARM_IP BOOTFARM_ROUTER BOOTFARM_IMAGE BOOTFARM_IMAGE_VERSION
  export BOOTFARM_STATE_DIR=/var/lib/bootfarm BOOTFARM_LOG="$AGENT_LOG"
  bf_log "starting agent: $AGENT --mode $mode (server ${BF_SERVER:-none})"
  rm -f /run/bootfarm-init/agent.rc
  # The agent reads its configuration from /proc/cmdline itself (agent/cmdline.ts); the environment is a courtesy.
  { "$AGENT" --mode "$mode" 2>&1; echo $? > /run/bootfarm-init/agent.rc; } | tee -a "$AGENT_LOG"
  rc="$(cat /run/bootfarm-init/agent.rc 2>/dev/null)"
  return "${rc:-1}"
}

# The agent is the node's purpose: run it; on exit report and keep a console, then run it again.
bf_agent_loop() {
  mode="$1"
  while true; do
    if [ ! -x "$AGENT" ]; then
      bf_rescue agent "$AGENT is missing from the image"
      continue
    fi
    bf_run_agent "$mode"
    rc=$?
    if [ "$rc" = 0 ]; then
      # stage1 ends in kexec and compute runs forever: a clean exit is unexpected but not an error.
      bf_log "agent exited (exit 0); keeping a console"
      bf_console
    else
      bf_rescue agent "agent ($mode) exited with code $rc"
    fi
  done
}
