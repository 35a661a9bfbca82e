package integrations

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// CheckSettings refuses settings that look like they hold a secret, with a SettingsError
// wrapping ErrSecretInSettings whose Path is the first offending member (settings.a.b[2]); nil
// when none does. Settings are stored in SQL and shown in every answer, so a credential put there
// by mistake would leak: the caller is told to send it as the secret member (Key Vault only).
//
// Member names, at any depth, are secret names when (secretMemberName):
//   - one of their words, or two adjacent words joined, is password, passwd, passphrase, secret,
//     token, key, credential(s), apikey, privatekey, clientsecret, connectionstring or sas (a
//     trailing plural s ignored). Words are split at separators (- _ . space), at lower→upper
//     case changes (apiKey → api, key) and at letter↔digit changes, then lowercased: so "keyboard",
//     "monkey" and "tokenizer" are single words and pass, while "apiKey", "API_KEY", "x-api-key",
//     "primaryKey" and "accessToken" are refused;
//   - or their normalised form (lowercase, without - and _) contains one of the unambiguous
//     compounds password, passwd, passphrase, apikey, privatekey, clientsecret, connectionstring,
//     credential — which catches run-together names like "dbpassword" or "APIKEY" that have no
//     word boundary to split at.
//
// String values, at any depth (member names too, and array elements), are refused when they
// match a credential pattern (secretValue): a JWT, a PEM block, an AWS access key id, GitHub,
// Slack, Stripe/OpenAI and Standard Webhooks secrets, Azure connection strings and SAS
// signatures, a URL with a password in it, or a long (≥ 32) high-entropy run of base64 or hex.
func CheckSettings(raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return &SettingsError{kind: ErrInvalidSettings, Path: "settings", Detail: "is not JSON"}
	}
	return walkSettings(doc, "settings")
}

func walkSettings(v any, path string) error {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) { // sorted: the same first offender on every run
			p := path + "." + k
			if secretMemberName(k) {
				return &SettingsError{kind: ErrSecretInSettings, Path: p,
					Detail: "is named like a secret (password, token, key, …)"}
			}
			if why := secretValue(k); why != "" {
				return &SettingsError{kind: ErrSecretInSettings, Path: p, Detail: "has a name that looks like " + why}
			}
			if err := walkSettings(x[k], p); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := walkSettings(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case string:
		if why := secretValue(x); why != "" {
			return &SettingsError{kind: ErrSecretInSettings, Path: path, Detail: "looks like " + why}
		}
	}
	return nil
}

// secretWords are the words (and two-word compounds, joined) that make a member name a secret's.
var secretWords = map[string]bool{
	"password": true, "passwd": true, "passphrase": true, "secret": true, "token": true, "key": true,
	"credential": true, "apikey": true, "privatekey": true, "clientsecret": true, "connectionstring": true,
	"sas": true, "pwd": true,
}

// secretCompounds are found anywhere in a normalised name: none is part of an innocent word.
var secretCompounds = []string{"password", "passwd", "passphrase", "apikey", "privatekey", "clientsecret",
	"connectionstring", "credential"}

// secretName reports whether a member name is a secret's (see CheckSettings).
func secretMemberName(name string) bool {
	norm := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	for _, c := range secretCompounds {
		if strings.Contains(norm, c) {
			return true
		}
	}
	words := nameWords(name)
	for i, w := range words {
		if secretWords[w] || secretWords[strings.TrimSuffix(w, "s")] {
			return true
		}
		if i > 0 {
			j := words[i-1] + w
			if secretWords[j] || secretWords[strings.TrimSuffix(j, "s")] {
				return true
			}
		}
	}
	return false
}

// nameWords splits a member name into lowercase words at separators, lower→upper case changes,
// the end of an upper-case run followed by a lower-case letter (HTTPServer → http, server) and
// letter↔digit changes.
func nameWords(name string) []string {
	var words []string
	var cur []rune
	rs := []rune(name)
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if len(cur) > 0 {
			prev := cur[len(cur)-1]
			switch {
			case unicode.IsLower(prev) && unicode.IsUpper(r),
				unicode.IsLetter(prev) != unicode.IsLetter(r),
				unicode.IsUpper(prev) && unicode.IsUpper(r) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// credentialPatterns are the shapes of well-known credentials, each with what it is called.
var credentialPatterns = []struct {
	re   *regexp.Regexp
	name string
}{
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`), "a JWT"},
	{regexp.MustCompile(`-----BEGIN[ A-Z0-9]*-----|-----BEGIN`), "a PEM block (a key or certificate)"},
	{regexp.MustCompile(`(?:^|[^A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?:[^A-Z0-9]|$)`), "an AWS access key id"},
	{regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}`), "a GitHub token"},
	{regexp.MustCompile(`xox[baprs]-[A-Za-z0-9-]{8,}`), "a Slack token"},
	{regexp.MustCompile(`(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}`), "a Stripe key"},
	{regexp.MustCompile(`(?:^|[^A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}`), "an API secret key (sk-…)"},
	{regexp.MustCompile(`whsec_[A-Za-z0-9+/=]{8,}`), "a webhook signing secret"},
	{regexp.MustCompile(`(?i)(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)\s*=`), "a connection string with a key or password"},
	{regexp.MustCompile(`(?i)(?:^|[?&;\s])sig=[A-Za-z0-9%+/=]{8,}`), "a SAS signature"},
	{regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://[^/\s:@?#]*:[^/\s@?#]+@`), "a URL with a password in it"},
}

// secretValue returns what a string looks like when it looks like a credential, else "".
func secretValue(s string) string {
	for _, p := range credentialPatterns {
		if p.re.MatchString(s) {
			return p.name
		}
	}
	// UUIDs are ids, never keys (highEntropy): taken out first, so one inside a path
	// (/tenants/<uuid>/health) does not make the path around it a long run.
	for _, run := range randomRuns.FindAllString(uuidInRE.ReplaceAllString(s, " "), -1) {
		if highEntropy(run) {
			return "a random key (a long high-entropy string)"
		}
	}
	return ""
}

// randomRuns are the candidate key material in a string: runs of base64/base64url/hex characters
// of 32 or more.
var randomRuns = regexp.MustCompile(`[A-Za-z0-9+/=_-]{32,}`)

// highEntropy decides whether a run of at least 32 characters is random key material (a
// heuristic, tuned on random keys against identifiers, paths and slugs):
//   - a canonical UUID is an id, never a key;
//   - hex only (0-9a-f, one case): Shannon entropy ≥ 2.8 bits per character (random hex of 32
//     digits has ≈ 3.5–3.9; "deadbeef" repeated or a run of zeros is far below);
//   - otherwise, over its letters and digits only (at least 28): the characters must change class
//     (upper case, lower case, digit) between neighbours at least 40 % of the time — random base64
//     does ≈ 60 %, camelCase identifiers, paths and slugs ≈ 10–30 % — and reach an entropy ≥ 3.7
//     (random base64 of 32 characters has ≈ 4.1–4.8).
//
// It misses about 1 % of random 32-character base64 keys (under 0.1 % at 48 and more): the
// named patterns and member names are the main guard, this one is the net under them.
func highEntropy(run string) bool {
	trimmed := strings.TrimRight(run, "=")
	if len(trimmed) < 32 || uuidRE.MatchString(trimmed) {
		return false
	}
	if isHex(trimmed) {
		return entropy(trimmed) >= 2.8
	}
	alnum := strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, trimmed)
	if len(alnum) < 28 {
		return false
	}
	changes := 0
	for i := 1; i < len(alnum); i++ {
		if charClass(alnum[i]) != charClass(alnum[i-1]) {
			changes++
		}
	}
	return float64(changes)/float64(len(alnum)-1) >= 0.4 && entropy(alnum) >= 3.7
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func charClass(b byte) int {
	switch {
	case b >= 'A' && b <= 'Z':
		return 0
	case b >= 'a' && b <= 'z':
		return 1
	}
	return 2
}

func isHex(s string) bool {
	lower, upper := true, true
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'a' && r <= 'f':
			upper = false
		case r >= 'A' && r <= 'F':
			lower = false
		default:
			return false
		}
	}
	return lower || upper
}

// entropy is the Shannon entropy of s's characters, in bits per character.
func entropy(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	var h float64
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h
}

// URLSettingsConnector is a Connector whose settings hold URLs or URL paths the service calls
// with the connection's credential (the http connector: baseUrl, healthPath, syncPath). The
// service runs CheckURLSettings over those members with the secret guard, before the schema.
type URLSettingsConnector interface {
	Connector
	// URLSettings names the members (top level) holding a URL or a URL path.
	URLSettings() []string
}

// CheckURLSettings refuses URL settings that could carry a credential, which a settings member
// must not (settings are stored and shown to every reader of the tenant); members is the list of
// top-level members holding a URL or a path. For each one present as a string:
//   - a query string or fragment (any ? or #) is refused (ErrInvalidSettings): query parameters
//     are where API keys and access tokens travel (?apikey=, ?access_token=), and the connector
//     sends its credential in the Authorization header from the secret member instead;
//   - each path segment (percent-decoded) is checked with the value rules (secretValue) and
//     refused (ErrSecretInSettings) when it looks like a credential or like a random key
//     (randomSegment): incoming-webhook URLs carry their credential as a path segment.
//
// The host is not checked. The error is a SettingsError whose Path is settings.<member>.
func CheckURLSettings(raw json.RawMessage, members []string) error {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil // not an object: the schema says so
	}
	for _, m := range members {
		v, ok := doc[m].(string)
		if !ok {
			continue
		}
		p := "settings." + m
		if strings.ContainsAny(v, "?#") {
			return &SettingsError{kind: ErrInvalidSettings, Path: p,
				Detail: "must not carry a query string or fragment: settings are shown to every reader, so a credential (api key, access token) goes in the secret member, which the connector sends in the Authorization header"}
		}
		path := v
		if strings.Contains(v, "://") {
			u, err := url.Parse(v)
			if err != nil {
				continue // not a URL: the schema and the connector's rules say so
			}
			path = u.EscapedPath()
		}
		for _, seg := range strings.Split(path, "/") {
			if dec, err := url.PathUnescape(seg); err == nil {
				seg = dec
			}
			why := secretValue(seg)
			if why == "" && randomSegment(seg) {
				why = "a random key"
			}
			if why != "" {
				return &SettingsError{kind: ErrSecretInSettings, Path: p, Detail: "has a path segment that looks like " + why}
			}
		}
	}
	return nil
}

// ulidRE is a ULID (Crockford base32, one case), an id and never a key.
var ulidRE = regexp.MustCompile(`^(?:[0-7][0-9A-HJKMNP-TV-Z]{25}|[0-7][0-9a-hjkmnp-tv-z]{25})$`)

// uuidInRE finds UUIDs inside a path segment: ids, removed before the segment is judged.
var uuidInRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// segmentRuns are the candidate keys in a path segment: runs of base64url characters.
var segmentRuns = regexp.MustCompile(`[A-Za-z0-9_-]{16,}`)

// randomSegment reports whether a path segment holds a random-looking key (a heuristic for the
// short keys highEntropy does not judge): once UUIDs are taken out, a run of 16 or more base64url
// characters, not a ULID, with both letters and digits among its letters and digits, which
// change class (upper case, lower case, digit) between neighbours at least 25 % of the time, a
// change from upper to lower case not counted (so CamelCase words are not change). Random base62
// keys of 16 characters do so ≈ 92 % of the time, lower-case letters and digits ≈ 88 %; slugs
// (order-created, api-v2-customers-export, sync-job-2024-eu-west-1), dates and CamelCase names
// with a version number stay below.
func randomSegment(seg string) bool {
	seg = uuidInRE.ReplaceAllString(seg, " ")
	for _, run := range segmentRuns.FindAllString(seg, -1) {
		if ulidRE.MatchString(run) {
			continue
		}
		alnum := strings.Map(func(r rune) rune {
			if r == '-' || r == '_' {
				return -1
			}
			return r
		}, run)
		if len(alnum) < 12 || !strings.ContainsAny(alnum, "0123456789") ||
			strings.Trim(alnum, "0123456789") == "" {
			continue
		}
		changes := 0
		for i := 1; i < len(alnum); i++ {
			a, b := charClass(alnum[i-1]), charClass(alnum[i])
			if a != b && !(a == 0 && b == 1) {
				changes++
			}
		}
		if float64(changes)/float64(len(alnum)-1) >= 0.25 {
			return true
		}
	}
	return false
}
