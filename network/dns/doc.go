// Package dns is the embedded DNS server of a user-defined network: it lets the containers
// on one network find each other by container name, network alias, short id and hostname,
// the way docker's embedded resolver and podman's aardvark-dns do, and relays every other
// name to the host's resolvers.
//
// berth has no daemon, so nothing inside berth could answer at 127.0.0.11 the way dockerd
// does from inside each container's network namespace. Instead one server per network runs
// in the host's namespace, listening on the network's gateway address (UDP and TCP, port
// 53), and each container's /etc/resolv.conf names that gateway. Running in the host's
// namespace is also why a loopback upstream such as systemd-resolved's 127.0.0.53 works
// here, where docker has to rewrite it.
//
// This package is only the server. The caller spawns it, decides which address it binds,
// and supplies the records through Config.Load; Config.Stamp lets the server notice new and
// removed containers without a watcher goroutine or a signal from the CLI.
//
// # Answers (one question per query, class IN)
//
//	known name, type A        every IPv4 of every record carrying the name, TTL 600, shuffled
//	known name, other type    NOERROR with no answers (NODATA), so that a stub resolver
//	                          asking A and AAAA together does not go on to the upstreams
//	                          and pick up some unrelated host that happens to share the name
//	reverse name of a known   PTR to the names of the records with that IPv4, each record's
//	IPv4 (in-addr.arpa), PTR  first name (the container name) first
//	any other name            relayed to the upstreams when Config.Forward, else NXDOMAIN
//	opcode other than QUERY   NOTIMP; more than one question: FORMERR (miekg/dns does this
//	                          before our handler sees the packet); EDNS version > 0: BADVERS
//
// A known name is matched exactly, ignoring case and a trailing dot: "web" never matches
// "web.example.com". Search domains are the stub resolver's business.
//
// Local answers carry RA (the containers must not think recursion is unavailable) and,
// when the query had EDNS0, an OPT record advertising 1232 bytes with the DO bit copied
// (RFC 3225). Over UDP they are truncated (TC) to what the client can take, so a large
// alias set makes the client retry over TCP.
//
// # Relaying
//
// A relayed query goes to the upstreams in order, and the first usable answer is returned
// to the client byte for byte except for the message id. It leaves with a fresh random id
// (a client-chosen id would make spoofed upstream answers easier to forge) and the client's
// id is restored on the way back. A query that came over TCP goes upstream over TCP; one
// that came over UDP goes over UDP and, when the upstream truncates, is asked again of the
// same upstream over TCP. SERVFAIL and REFUSED answers, errors and timeouts
// (Config.Timeout per attempt) move on to the next upstream; when none answers, the client
// gets SERVFAIL.
package dns
