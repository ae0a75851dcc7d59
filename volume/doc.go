// Package volume owns named volumes (docker's "local" driver): their
// directories, metadata, the containers using them, removal and pruning, and
// the copy-up of image content into a fresh volume.
//
// # On-disk layout (under the data root, default /var/lib/berth)
//
//	volumes/                          0701
//	volumes/.lock                     flock(2): held, briefly, by Ref, Unref, Remove, Prune,
//	                                  and while a temp dir is made or swept
//	volumes/.tmp/                     work dirs; each is flock'ed by its owner while in use,
//	                                  so Open sweeps exactly the ones left by dead processes
//	volumes/<name>/meta.json          {"Name","CreatedAt","Labels","Options","Anonymous"}
//	volumes/<name>/_data/             the content, mounted into containers (0755 root)
//	volumes/<name>/refs/<containerID> empty files: the containers that use the volume
//
// A volume appears atomically: Create builds it in volumes/.tmp/ (meta.json
// fsynced) and renames it into place; a rename that fails with EEXIST or
// ENOTEMPTY means another Create won, and its volume is returned (docker
// returns the existing volume for a create with the same name). Remove and
// Prune rename a volume into volumes/.tmp/ under the lock, then delete it
// outside the lock. A ref is only added under the lock and only to a volume
// that still exists, and a volume is only removed under the lock while it
// has no refs, so a Ref racing a Remove either lands first (and the Remove
// fails with ErrInUse) or fails with ErrNotFound.
//
// Names follow docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+; a volume created
// without a name gets 64 random hex digits. Anonymous volumes (created for an
// image VOLUME or `-v /path`) carry docker's label com.docker.volume.anonymous
// and are the only ones a default prune removes (docker >= 23).
package volume
