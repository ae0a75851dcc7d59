// Package network gives containers their network: bridge networks (the default "bridge" and
// user-defined ones), an address per container from the network's subnet, a veth pair into
// the container's own network namespace, published ports as DNAT rules (network/nft), and a
// DNS server per user-defined network (network/dns) through which containers find each other
// by name.
//
// berth has no daemon: every piece of state is on disk and every change is made by the berth
// command that needs it, under a lock, so that a crash at any point leaves something the next
// command can finish or undo.
//
// On disk (data root):
//
//	<root>/networks/
//	  lock                       flock: exclusive to create or remove a network, shared to attach
//	  <id>/network.json          the network (written atomically)
//	  <id>/lock                  flock: exclusive to remove the network, shared to attach to it
//	  <id>/leases/<ipv4>         an address in use; the file holds the container id. Creating
//	                             it with O_EXCL is the allocation: two containers never get
//	                             one address, without a lock held across the whole setup
//	  <id>/endpoints/<cid>.json  a container attached to the network (address, MAC, names,
//	                             host-side veth); the DNS server reads this directory
//
// At run time (tmpfs, cleared by a reboot, when every namespace, veth and rule is gone too):
//
//	<run>/netns/<cid>          the container's network namespace (an nsfs bind mount); the
//	                           directory is a shared mount point, as iproute2's /run/netns, so
//	                           that unmounting a namespace reaches every copy of the mount
//	<run>/ready/<id>           the network's bridge and firewall rules are set up (this boot)
//	<run>/dns/<id>.{lock,pid}  the network's DNS server holds the lock while it runs
//
// A container's resources are created in this order: netns, lease, endpoint file, veth (its
// name derives from the container and network ids), port rules (tagged with the container
// id). Release undoes them in reverse and tolerates any of them missing, so it also cleans up
// after a setup that was killed half-way. Reconcile finds what belongs to containers that are
// gone or no longer running and releases it.
package network
