// Package auth authenticates requests: signed bearer tokens (JWT, HS256)
// carrying a role and a subject. Verification sits behind the Verifier
// interface, so an OpenID Connect front can replace it later.
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles of the contract.
const (
	Pupil        = "pupil"
	Guardian     = "guardian"     // subject: the guardian, GuardianSubject (see there)
	School       = "school"       // subject: the school's UAI
	Employer     = "employer"     // subject: the employer id
	Operator     = "operator"     // subject: the partner's id
	Backoffice   = "backoffice"   // subject: the agent
	Auditor      = "auditor"      // subject: the auditor
	Statistician = "statistician" // subject: the statistician
)

// Roles lists every role.
var Roles = []string{Pupil, Guardian, School, Employer, Operator, Backoffice, Auditor, Statistician}

// Principal is who makes a request.
type Principal struct {
	Role    string
	Subject string
}

// Verifier turns a bearer token into a principal.
type Verifier interface {
	Verify(token string) (Principal, error)
}

// ErrInvalidToken is any token that does not verify.
var ErrInvalidToken = errors.New("invalid token")

// HMAC issues and verifies HS256 tokens with one shared key.
type HMAC struct {
	key    []byte
	issuer string
	now    func() time.Time
}

// NewHMAC builds an issuer/verifier; the key must be at least 32 bytes.
func NewHMAC(key []byte, now func() time.Time) (*HMAC, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("token key: at least 32 bytes are needed, got %d", len(key))
	}
	if now == nil {
		now = time.Now
	}
	return &HMAC{key: key, issuer: "passerelle", now: now}, nil
}

type claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

var subjectRe = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// Issue signs a token for role and subject, valid for ttl.
func (h *HMAC) Issue(p Principal, ttl time.Duration) (string, error) {
	if !ValidRole(p.Role) {
		return "", fmt.Errorf("unknown role %q", p.Role)
	}
	if p.Subject != "" && !subjectRe.MatchString(p.Subject) {
		return "", fmt.Errorf("subject %q: letters, digits and ._:@- only, at most 128", p.Subject)
	}
	now := h.now()
	c := claims{Role: p.Role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: h.issuer, Subject: p.Subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(h.key)
}

// Verify checks signature, algorithm, issuer and expiry.
func (h *HMAC) Verify(token string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return h.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(h.issuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(h.now))
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !ValidRole(c.Role) {
		return Principal{}, fmt.Errorf("%w: unknown role", ErrInvalidToken)
	}
	return Principal{Role: c.Role, Subject: c.Subject}, nil
}

// GuardianSubject is the subject of a guardian's token: the pupil's id and
// the guardian's rank among the pupil's guardians as registered (1, 2),
// "PUPIL_ID:RANK". Each guardian is a person of their own, so one cannot
// sign in the other's place when both must sign.
func GuardianSubject(pupilID string, rank int) string {
	return pupilID + ":" + strconv.Itoa(rank)
}

// ParseGuardian reads a guardian's subject: the pupil and the guardian's
// rank. A bare pupil id, the subject of tokens issued before guardians
// were told apart, still works: it is the pupil's first guardian.
func ParseGuardian(subject string) (pupilID string, rank int, ok bool) {
	id, r, found := strings.Cut(subject, ":")
	if !found {
		return subject, 1, subject != ""
	}
	n, err := strconv.Atoi(r)
	if err != nil || n < 1 || n > 9 || strconv.Itoa(n) != r || id == "" {
		return "", 0, false
	}
	return id, n, true
}

// ValidRole reports whether r is a role of the contract.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// Subjects says, for each role whose tokens must name whom they stand
// for, what the subject is: every rule that lets such a role in compares
// the subject with the resource's owner, so a token without one opens
// nothing.
var Subjects = map[string]string{
	Pupil: "the pupil's id", Guardian: "the child's pupil id", School: "the school's UAI",
	Employer: "the employer's id", Operator: "the operator's id",
}

// ErrNoKey is a data directory without a token key.
var ErrNoKey = errors.New("no token key")

// LoadKey reads the token key from dir; ErrNoKey when it has none.
func LoadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoKey, path)
	}
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%s: too short", path)
	}
	return key, nil
}

// KeyFile is the token key's file in the data directory.
const KeyFile = "token.key"

// LoadOrCreateKey reads the token key from dir, creating a random one on
// first start (0600, fsynced) for the embedded default.
func LoadOrCreateKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := LoadKey(dir)
	if !errors.Is(err, ErrNoKey) {
		return key, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(dir) // another process created it first
	}
	if err != nil {
		return nil, err
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return nil, err
	}
	return key, nil
}

type ctxKey struct{}

// With returns ctx carrying p, and records p where Observe asked.
func With(ctx context.Context, p Principal) context.Context {
	if seen, ok := ctx.Value(observeKey{}).(*Principal); ok {
		*seen = p
	}
	return context.WithValue(ctx, ctxKey{}, p)
}

type observeKey struct{}

// Observe returns ctx with a place where the principal authenticated
// further down the request is recorded: for middleware that runs before
// authentication and reports after it (the request log).
func Observe(ctx context.Context) (context.Context, *Principal) {
	seen := &Principal{}
	return context.WithValue(ctx, observeKey{}, seen), seen
}

// From returns the request's principal, if authenticated.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
