#!/nimbus/busybox sh
# Nimbus microVM init, PID 1 of every guest: it loads the virtio modules,
# mounts the runtime's read-only squashfs (/dev/vda) as the worker's root,
# finds the virtio-serial port named "nimbus" and starts the language agent
# on it as fds 3 and 4. When the worker exits it says how on the console
# (the host reads that line) and powers the VM off.
#
# The kernel passes nimbus_runtime (python, nodejs) and nimbus_memory (MB)
# from its command line in the environment.
bb=/nimbus/busybox
$bb mkdir -p /bin && $bb --install -s /bin
export PATH=/bin

say() { echo "nimbus-init: $*"; }
die() {
	say "fatal: $*"
	echo "nimbus-agent: exit status=125 oom=0"
	poweroff -f
	sleep 5
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
	insmod "/modules/$m.ko" || say "insmod $m failed"
done

# Devices appear asynchronously after their driver loads.
waitfor() {
	i=0
	while ! "$@"; do
		i=$((i + 1))
		[ $i -gt 500 ] && return 1
		usleep 10000
	done
}
findport() {
	for p in /sys/class/virtio-ports/*; do
		[ -f "$p/name" ] && [ "$(cat "$p/name")" = nimbus ] && port=/dev/${p##*/} && [ -c "$port" ] && return 0
	done
	return 1
}
waitfor test -b /dev/vda || die "no runtime disk /dev/vda"
waitfor findport || die "no virtio-serial port named nimbus"

rt=/rt
mount -t squashfs -o ro /dev/vda $rt || die "mount runtime image"
mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs $rt/tmp
# The function's code and layers, written by the agent as root before it
# drops root (read-only to the worker), in RAM: they count against the
# function's memory.
mount -t tmpfs -o mode=755,size=256m,nosuid,nodev tmpfs $rt/var/task
mount -t tmpfs -o mode=755,size=256m,nosuid,nodev tmpfs $rt/opt/layers
mount -o bind /nimbus $rt/nimbus
mount -o bind /dev $rt/dev
mount -t proc proc $rt/proc
interp=$(cat $rt/etc/nimbus/interpreter) || die "runtime image names no interpreter"

case "$nimbus_runtime" in
python) set -- "$interp" -I -S -B /nimbus/agent.py ;;
nodejs) set -- "$interp" --max-old-space-size="${nimbus_memory:-128}" /nimbus/agent.js ;;
*) die "unknown runtime '$nimbus_runtime'" ;;
esac

# The worker gets the function's memory in a cgroup of its own, which its
# agent joins once the interpreter has started and before the function's
# code loads: what the interpreter itself faulted in (its binary's pages
# above all) stays charged outside, so that past the limit the guest's OOM
# killer ends the worker at once instead of the cgroup thrashing on the
# interpreter's code. The cgroup file system is mounted in the worker's root
# too; only root (the agent, before it drops root) can write to it.
cg=/sys/fs/cgroup
if mount -t cgroup2 cgroup2 $cg && echo +memory > $cg/cgroup.subtree_control && mkdir $cg/worker; then
	echo $((${nimbus_memory:-128} * 1024 * 1024)) > $cg/worker/memory.max
	echo 1 > $cg/worker/memory.oom.group
	mount -t cgroup2 cgroup2 $rt$cg
else
	say "no memory cgroup: the VM's RAM is the only limit"
fi

# The worker's stdout and stderr are the console: what it prints outside the
# shim's capture (a fatal error, a C extension) reaches the host there. It
# can gain no privileges (the agent drops root before the handler loads)
# and its user may run at most 64 processes.
ulimit -u 64
setpriv --nnp chroot $rt "$@" 3<>"$port" 4>&3 </dev/null &
wait $!
status=$?
oom=0
dmesg | grep -qi "out of memory: killed process" && oom=1
echo "nimbus-agent: exit status=$status oom=$oom"
poweroff -f
sleep 5
