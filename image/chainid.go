package image

import digest "github.com/opencontainers/go-digest"

// ChainID computes the OCI chain ID of a layer from its parent's chain ID and
// its own diff ID: sha256(parent + " " + diffID), or diffID itself for the
// base layer (parent ""). A chain ID names a whole stack of layers, which is
// why snapshots are keyed by it: two images share a snapshot exactly when
// they share every layer beneath it.
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// ChainIDs returns the chain ID of every prefix of diffIDs (rootfs.diff_ids,
// base layer first).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = ChainID(parent, d)
		out[i] = parent
	}
	return out
}
