# iSCSI login and the persistent state mount of the compute OS (busybox ash). Sourced by /init.
# iscsistart (open-iscsi) logs in without iscsid, as initramfs-tools does; the kernel side is iscsi_tcp (RFC 7143).

STATE_DIR=/var/lib/bootfarm

# Portal → $host $port: HOST, HOST:PORT, [IPv6] or [IPv6]:PORT (RFC 3986 §3.2.2 brackets, as iscsiadm writes portals;
# 3260 is the IANA iSCSI port, RFC 7143 §13.1). iscsistart -a takes the bare address: brackets are removed. A bare
# IPv6 address without brackets is taken whole (its colons cannot be told from a port).
bf_iscsi_portal() {
  case "$1" in
    \[*\]) host="${1#\[}"; host="${host%\]}"; port=3260 ;;
    \[*\]:*) host="${1#\[}"; host="${host%%\]*}"; port="${1##*\]:}" ;;
    \[*) return 1 ;;
    *:*:*) host="$1"; port=3260 ;;
    *:*) host="${1%:*}"; port="${1##*:}" ;;
    *) host="$1"; port=3260 ;;
  esac
  [ -n "$host" ] && [ -n "$port" ] && [ -z "$(echo "$port" | tr -d 0-9)" ]
}

bf_iscsi_login() {
  BF_ISCSI_ERROR=
  if [ -z "$BF_ISCSI_TARGET" ]; then
    bf_log "iscsi: no bootfarm.iscsi.target on the command line; state stays in RAM"
    BF_ISCSI_DEV=
    return 0
  fi
  if [ -z "$BF_ISCSI_PORTAL" ] || [ -z "$BF_ISCSI_INITIATOR" ]; then
    BF_ISCSI_ERROR="bootfarm.iscsi.portal and bootfarm.iscsi.initiator are required with bootfarm.iscsi.target"
    return 1
  fi
  bf_iscsi_portal "$BF_ISCSI_PORTAL" || { BF_ISCSI_ERROR="bootfarm.iscsi.portal=$BF_ISCSI_PORTAL is not HOST, HOST:PORT, [IPv6] or [IPv6]:PORT"; return 1; }
  if ! grep -q "^$BF_ISCSI_TARGET\$" /run/bootfarm-init/iscsi.session 2>/dev/null; then
    case "$host" in *:*) at="[$host]:$port" ;; *) at="$host:$port" ;; esac
    bf_log "iscsi: login $BF_ISCSI_TARGET at $at lun $BF_ISCSI_LUN as $BF_ISCSI_INITIATOR${BF_ISCSI_USER:+ (CHAP user $BF_ISCSI_USER)}"
    # -g 1: target portal group tag; tgt and LIO default to 1.
    if ! iscsistart -i "$BF_ISCSI_INITIATOR" -t "$BF_ISCSI_TARGET" -g 1 -a "$host" -p "$port" \
        ${BF_ISCSI_USER:+-u "$BF_ISCSI_USER" -w "$BF_ISCSI_PASSWORD"} >/tmp/iscsistart.out 2>&1; then
      BF_ISCSI_ERROR="iscsistart failed: $(tail -n 3 /tmp/iscsistart.out | tr '\n' ' ')"
      return 1
    fi
    echo "$BF_ISCSI_TARGET" > /run/bootfarm-init/iscsi.session
  fi
  # The SCSI scan after login is asynchronous: wait (bounded, ~20 s) for the LUN's block device.
  BF_ISCSI_DEV=
  tries=0
  while [ $tries -lt 100 ] && [ -z "$BF_ISCSI_DEV" ]; do
    for b in /sys/class/iscsi_session/session*/device/target*/*:*:*:"$BF_ISCSI_LUN"/block/*; do
      [ -e "$b" ] && BF_ISCSI_DEV="/dev/${b##*/}" && break
    done
    [ -n "$BF_ISCSI_DEV" ] || { tries=$((tries + 1)); sleep 0.2; }
  done
  if [ -z "$BF_ISCSI_DEV" ] || [ ! -b "$BF_ISCSI_DEV" ]; then
    BF_ISCSI_ERROR="logged in to $BF_ISCSI_TARGET but LUN $BF_ISCSI_LUN has no block device"
    return 1
  fi
  bf_log "iscsi: LUN $BF_ISCSI_LUN is $BF_ISCSI_DEV ($(cat /sys/class/block/${BF_ISCSI_DEV#/dev/}/size) sectors)"
}

# Blank = the first 1 MiB is all zero. Anything else that is not ext4 is refused, never formatted: it may be data.
bf_is_blank() {
  [ "$(dd if="$1" bs=65536 count=16 2>/dev/null | tr -d '\000' | head -c 1 | wc -c)" = 0 ]
}

bf_mount_state() {
  mkdir -p "$STATE_DIR"
  [ -n "$BF_ISCSI_DEV" ] || return 0
  bf_mounted "$STATE_DIR" && return 0
  if bf_is_blank "$BF_ISCSI_DEV"; then
    bf_log "iscsi: $BF_ISCSI_DEV is blank: mkfs.ext4"
    if ! mkfs.ext4 -q -F -L bootfarm-state -E lazy_itable_init=1,lazy_journal_init=1 "$BF_ISCSI_DEV" >/tmp/mkfs.out 2>&1; then
      BF_ISCSI_ERROR="mkfs.ext4 $BF_ISCSI_DEV failed: $(tail -n 3 /tmp/mkfs.out | tr '\n' ' ')"
      return 1
    fi
  else
    # e2fsck -p exits 0 (clean), 1 (fixed) or 2 (fixed, reboot wanted: not for a data disk); ≥4 needs a person.
    e2fsck -p "$BF_ISCSI_DEV" >/tmp/fsck.out 2>&1
    rc=$?
    if [ $rc -ge 4 ]; then
      BF_ISCSI_ERROR="$BF_ISCSI_DEV is not blank and e2fsck -p says $rc (not ext4, or damaged): not formatting it; $(tail -n 2 /tmp/fsck.out | tr '\n' ' ')"
      return 1
    fi
  fi
  if ! mount -t ext4 -o noatime "$BF_ISCSI_DEV" "$STATE_DIR" 2>/tmp/mount.err; then
    BF_ISCSI_ERROR="mount $BF_ISCSI_DEV $STATE_DIR failed: $(cat /tmp/mount.err)"
    return 1
  fi
  bf_log "iscsi: $BF_ISCSI_DEV mounted at $STATE_DIR"
}

# The login and the state mount as one step for bf_until: a retry after a failed mount does not log in again
# (the session is recorded in /run/bootfarm-init/iscsi.session).
bf_iscsi_and_state() {
  bf_iscsi_login && bf_mount_state
}
