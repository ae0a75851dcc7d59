// Package container is berth's engine for containers: records, spec generation with secure
// defaults, the lifecycle (create, start, stop, kill, restart, pause, rm, rename, wait, exec),
// logs, stats, events and file operations. It drives the OCI runtime (package runtime, through
// the berth-runtime binary for everything the per-container monitor does) and the overlay
// snapshotter; it never imports cobra.
//
// # On-disk layout (under the data root, default /var/lib/berth)
//
//	containers/<id>/config.json       Record: docker's Config + HostConfig + berth's fields; written
//	                                  by the CLI (temp + fsync + rename) under the container's lock
//	containers/<id>/state.json        monitor.State: written only by the container's monitor (and by
//	                                  the CLI while no monitor runs), atomically
//	containers/<id>/lock              flock(2): held by every CLI operation that changes the container
//	containers/<id>/bundle/config.json  the OCI spec the runtime gets
//	containers/<id>/bundle/rootfs     the overlay mount point of the container's active snapshot
//	containers/<id>/monitor.json      monitor.Config (the monitor's whole input)
//	containers/<id>/attach.sock       the monitor's attach socket (protocol in package monitor)
//	containers/<id>/<id>-json.log     docker json-file logs (rotated: .1, .2, ...)
//	containers/<id>/hostname, hosts, resolv.conf   bind-mounted into the container
//	containers/names/<name>           symlink -> <id>: symlink(2) fails on an existing name, so a
//	                                  name is unique without any other lock
//	events.log                        one JSON event per line, appended with O_APPEND
//
// The runtime's state lives under /run/berth/runtime (tmpfs: a reboot clears it), keyed by the
// container id. The snapshot key of a container is its id.
package container
