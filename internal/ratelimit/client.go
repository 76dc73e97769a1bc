package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the networks of the reverse proxies in front of the service
// (--trusted-proxies). A request whose connection comes from one of them
// is counted against the address the proxies say they received it from.
type Proxies []netip.Prefix

// ParseProxies reads a comma-separated list of CIDRs or addresses ("" is
// none: every client is the connection's address).
func ParseProxies(s string) (Proxies, error) {
	var out Proxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxies: %q is neither a CIDR nor an IP address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (ps Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the address a request counts against: the connection's, or,
// when that is a trusted proxy, the rightmost address of X-Forwarded-For
// that is not a trusted proxy's. Each proxy appends the address it
// received the request from, so everything left of the first untrusted
// address is the client's to write and is never believed. An entry that is
// not an address ends the walk at the nearest proxy: a client cannot pick
// the key it is counted under.
func (ps Proxies) Client(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, serr := net.SplitHostPort(r.RemoteAddr)
		if serr != nil {
			return r.RemoteAddr
		}
		return host
	}
	client := peer.Addr().Unmap()
	if !ps.trusts(client) {
		return client.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" && len(hops) == 1 {
			break // no header
		}
		a, err := netip.ParseAddr(hop)
		if err != nil {
			break
		}
		client = a.Unmap()
		if !ps.trusts(client) {
			break
		}
	}
	return client.String()
}
