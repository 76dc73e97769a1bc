package eventstore

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Metadata is the JSON envelope every Passerelle event carries in
// EventData.Metadata. Adapters store it as opaque bytes.
type Metadata struct {
	CommandID     string    `json:"command_id"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	Actor         Actor     `json:"actor"`
	OccurredAt    time.Time `json:"occurred_at"`
	// PrevHash is the hash of the previous event of the same stream
	// (package chain), empty for a stream's first event.
	PrevHash string `json:"prev_hash,omitempty"`
	// Reason says why a step of a process was taken (a repair of the
	// placement process: "seat released: acceptance interrupted").
	Reason string `json:"reason,omitempty"`
}

// Actor is who issued the command: a role and, for most roles, a subject.
type Actor struct {
	Role    string `json:"role"`
	Subject string `json:"subject,omitempty"`
}

// Encode renders the metadata as JSON.
func (m Metadata) Encode() []byte {
	b, _ := json.Marshal(m) // plain struct: cannot fail
	return b
}

// DecodeMetadata parses an envelope; events written by other tools may have
// none, which gives the zero Metadata.
func DecodeMetadata(b []byte) (Metadata, error) {
	var m Metadata
	if len(b) == 0 {
		return m, nil
	}
	err := json.Unmarshal(b, &m)
	return m, err
}

// eventIDSpace is the UUID namespace of deterministic event IDs.
var eventIDSpace = uuid.MustParse("5b0e3c2a-6f1d-4c59-9a51-7d0c2f6a8e11")

// EventID derives the ID of the index-th event written by a command, so that
// a retried command produces the same IDs and the store deduplicates it.
func EventID(commandID string, index int) uuid.UUID {
	return uuid.NewSHA1(eventIDSpace, []byte(commandID+"/"+strconv.Itoa(index)))
}
