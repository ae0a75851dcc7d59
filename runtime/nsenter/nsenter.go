// Package nsenter is the one cgo package of berth: importing it links a constructor
// (nsenter.c) that joins and creates namespaces before the Go runtime starts. The protocol
// is described at the top of nsenter.c; runtime/process.go is the other side.
package nsenter

// #cgo CFLAGS: -Wall -Wextra -O2
import "C"
