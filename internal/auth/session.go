package auth

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the UI's session: HttpOnly, SameSite=Strict.
const SessionCookie = "nimbus_session"

// SessionTTL is how long a session lasts.
const SessionTTL = 12 * time.Hour

// NewSession is a session token for the key id (whose record is rec): the
// id, its end, and a MAC over both and the key's hash, so that it needs no
// server state, works on every server sharing the key-encryption key, and
// ends with the key (revoked, or its secret rotated).
func (k *Keys) NewSession(ctx context.Context, id string) (string, time.Time, error) {
	_, rec, err := k.Principal(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	end := k.now().Add(SessionTTL).Truncate(time.Second)
	if !rec.ExpiresAt.IsZero() && rec.ExpiresAt.Before(end) {
		end = rec.ExpiresAt
	}
	exp := strconv.FormatInt(end.Unix(), 10)
	mac := k.ring.mac(id, exp, hex.EncodeToString(rec.Hash))
	return id + "." + exp + "." + base64.RawURLEncoding.EncodeToString(mac), end, nil
}

// Session is who a session token is.
func (k *Keys) Session(ctx context.Context, token string) (*Principal, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 256 {
		return nil, ErrBadKey
	}
	id, exp, sig := parts[0], parts[1], parts[2]
	end, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !k.now().Before(time.Unix(end, 0)) {
		return nil, ErrExpired
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, ErrBadKey
	}
	p, rec, err := k.Principal(ctx, id)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(mac, k.ring.mac(id, exp, hex.EncodeToString(rec.Hash))) {
		return nil, ErrBadKey
	}
	return p, nil
}
