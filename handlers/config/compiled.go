package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"

	"spine/shared/flags"
)

// CompiledSet is a tenant's flag set as the evaluation path holds it: compiled, with the snapshot
// it was compiled from (what Redis keeps) and that snapshot's hash.
type CompiledSet struct {
	Set *flags.Set
	raw []byte
	// Tag is a hash of the snapshot: equal tags, equal sets.
	Tag string
	// Edition is the tenant's edition code the set was compiled with ("" when unknown: no
	// subscription, or the entitlements source failed).
	Edition string
}

// compileSet compiles a snapshot (raw is its JSON).
func compileSet(raw []byte, snap flags.Snapshot, log *slog.Logger) (*CompiledSet, error) {
	set, err := flags.Compile(snap)
	if err != nil {
		return nil, err
	}
	for _, s := range set.Skipped() {
		log.Warn("config: flag set entry skipped", "why", s)
	}
	sum := sha256.Sum256(raw)
	return &CompiledSet{Set: set, raw: raw, Tag: hex.EncodeToString(sum[:8]), Edition: snap.Edition}, nil
}

// setCodec stores a CompiledSet in Redis as its snapshot's JSON and compiles it when read back,
// so a set read from Redis is compiled once per instance (then served from the local copy).
type setCodec struct{ log *slog.Logger }

func (setCodec) Encode(cs *CompiledSet) ([]byte, error) { return cs.raw, nil }

func (c setCodec) Decode(b []byte) (*CompiledSet, error) {
	var snap flags.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, err
	}
	log := c.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return compileSet(append([]byte(nil), b...), snap, log)
}
