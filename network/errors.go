package network

import "errors"

var (
	ErrNotFound     = errors.New("network not found")
	ErrExists       = errors.New("network already exists")
	ErrInUse        = errors.New("network has active endpoints")
	ErrOverlap      = errors.New("pool overlaps with other one on this address space")
	ErrInvalid      = errors.New("invalid network configuration")
	ErrAddrInUse    = errors.New("address already in use")
	ErrNoAddress    = errors.New("no available addresses on this network")
	ErrPortInUse    = errors.New("port is already allocated")
	ErrPredefined   = errors.New("operation is not permitted on a pre-defined network")
	ErrNotConnected = errors.New("container is not connected to the network")
)
