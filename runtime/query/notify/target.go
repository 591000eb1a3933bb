package notify

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength bounds a webhook URL.
const MaxURLLength = 2048

// ErrForbiddenTarget says a webhook points at an address tenants may not reach from the
// installation's network: loopback, private, link-local, unspecified or multicast.
// Webhook URLs are written by tenants, so without this check a rule could make the query
// API call internal services (server-side request forgery).
var ErrForbiddenTarget = errors.New("must not reach localhost or a loopback, private, link-local, unspecified or multicast address")

// ErrInvalidURL says a webhook URL is not an http or https URL without credentials.
var ErrInvalidURL = errors.New("must be an http or https URL without credentials")

// extraForbidden are ranges netip.Addr has no predicate for: "this network", shared
// address space (carrier-grade NAT, often cloud-internal) and reserved/broadcast.
var extraForbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// nat64 is the well-known NAT64 prefix: its addresses reach the embedded IPv4 address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// ForbiddenAddr reports whether ip is an address webhooks may not reach unless the
// installation allows private targets.
func ForbiddenAddr(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range extraForbidden {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckURL checks a webhook URL as written: http or https, a host, no credentials, and
// unless allowPrivate, a host that is neither localhost nor a literal forbidden address.
// Names are checked again when sent, on the addresses they resolve to (see Dialer).
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" || u.User != nil || len(raw) > MaxURLLength {
		return ErrInvalidURL
	}
	if allowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w (host %s)", ErrForbiddenTarget, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ForbiddenAddr(ip) {
			return fmt.Errorf("%w (host %s)", ErrForbiddenTarget, host)
		}
		return nil
	}
	// No top-level domain is numeric: a host such as 127.1 or 0x7f000001 is an IPv4
	// address in a form some resolvers accept.
	if last := host[strings.LastIndexByte(host, '.')+1:]; numericLabel(last) {
		return fmt.Errorf("%w (host %s: write an IP address in dotted decimal)", ErrInvalidURL, host)
	}
	return nil
}

func numericLabel(s string) bool {
	if s == "" {
		return false
	}
	if t := strings.TrimPrefix(s, "0x"); t != s {
		s = t
		return s == "" || strings.Trim(s, "0123456789abcdef") == ""
	}
	return strings.Trim(s, "0123456789") == ""
}

// dialControl refuses connections to forbidden addresses. It runs on the address the
// connection is about to be made to, after name resolution, so a name that resolves to
// an internal address (or changes its answer between a check and the request: DNS
// rebinding) is refused too.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w (%s)", ErrForbiddenTarget, address)
	}
	if ForbiddenAddr(ap.Addr()) {
		return fmt.Errorf("%w (%s)", ErrForbiddenTarget, ap.Addr())
	}
	return nil
}

// guardedTransport is the webhook transport: it does not use a proxy from the
// environment (the proxy would connect on our behalf, past the address check) and,
// unless allowPrivate, refuses forbidden addresses when connecting.
func guardedTransport(allowPrivate bool) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = dialControl
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	return t
}
