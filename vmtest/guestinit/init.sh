#!/bin/busybox sh
# The guest's first moments. The kernel unpacked the initramfs into "rootfs",
# a root that pivot_root can never move away from, and stages 04 and 06
# pivot_root. So do what a distribution's initramfs does with the real disk:
# copy everything into a tmpfs and switch to it. switch_root deletes the
# initramfs copy as it goes, so the memory is only needed twice for a moment.
bb=/usr/bin/busybox
$bb mkdir -p /newroot
$bb mount -t tmpfs -o mode=0755,size=75% root /newroot
for f in /* /.[!.]*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	[ "$f" = /newroot ] && continue
	$bb cp -a "$f" /newroot/ || { echo "init: copying $f failed"; exec $bb sh; }
done
exec $bb switch_root /newroot /usr/sbin/guestinit
