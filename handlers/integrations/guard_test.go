package integrations

import (
	"errors"
	"testing"
)

func TestSecretMemberName_RefusesSecretWords_PassesLookalikes(t *testing.T) {
	cases := []struct {
		name   string
		secret bool
	}{
		// refused: a secret word, a two-word compound, or an unambiguous compound anywhere
		{"password", true}, {"Password", true}, {"PASSWORD", true}, {"dbPassword", true}, {"db_password", true},
		{"userpassword", true}, {"passwd", true}, {"passphrase", true}, {"secret", true}, {"clientSecret", true},
		{"client_secret", true}, {"CLIENT-SECRET", true}, {"token", true}, {"accessToken", true}, {"refresh_token", true},
		{"tokens", true}, {"key", true}, {"apiKey", true}, {"api_key", true}, {"API_KEY", true}, {"x-api-key", true},
		{"APIKEY", true}, {"apikey", true}, {"privateKey", true}, {"private_key", true}, {"primaryKey", true}, {"keys", true},
		{"credential", true}, {"credentials", true}, {"awsCredentials", true}, {"connectionString", true},
		{"connection_string", true}, {"storageConnectionString", true}, {"sasToken", true}, {"sas", true}, {"pwd", true},
		{"HTTPKey", true}, {"key2", true},
		// passed: words that merely contain the letters
		{"keyboard", false}, {"monkey", false}, {"turkey", false}, {"donkeyCount", false}, {"tokenizer", false},
		{"baseUrl", false}, {"healthPath", false}, {"authScheme", false}, {"username", false}, {"syncPath", false},
		{"passage", false}, {"hockey", false}, {"keynote", false}, {"secretary", false}, {"timeout", false},
	}
	for _, tc := range cases {
		if got := secretMemberName(tc.name); got != tc.secret {
			t.Errorf("secretMemberName(%q) = %v, want %v (words %v)", tc.name, got, tc.secret, nameWords(tc.name))
		}
	}
}

func TestSecretValue_RefusesCredentialPatterns_PassesOrdinaryValues(t *testing.T) {
	secret := []string{
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
		"-----BEGIN CERTIFICATE-----",
		"AKIAIOSFODNN7EXAMPLE",
		"id=AKIAIOSFODNN7EXAMPLE;",
		"ghp_16C7e42F292c6912E7710c838347Ae178B4a",
		"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
		"xoxb-123456789012-abcdefghij",
		"xoxp-1234-5678-abcd",
		"sk_live_4eC39HqLyjWDarjtT1zdp7dc",
		"sk-proj-abcdefghijklmnop1234",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc==;EndpointSuffix=core.windows.net",
		"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=abc=",
		"SharedAccessSignature=sv=2020&sig=abc",
		"https://acct.blob.core.windows.net/c/b?sv=2021-08-06&se=2030&sp=r&sig=AbCdEf0123456789%2Bxyz",
		"Server=tcp:x.database.windows.net;Database=d;User ID=u;Password=p4ss;",
		"https://user:pass@api.example.com/v1",
		"postgres://app:s3cret@db.internal:5432/app",
		// Random keys (generated once, kept so the test is the same on every run).
		"UzELsz1tgD58bfZiGS1kTJK6Pt0szqS9", // 32 characters of base64url
		"1AT0dRKgd3l23VXPZlRCRLFbcgasHxxz",
		"otRhISj0J7qsj--TrOs48Sqgt6Zi6UC9stwhXnzEFS4=",
		"5JJRXlqhQKp__UW5V8PpgCK6E4qocsLbwsMzHlcsr847iQZ4qWG4jsC4s01AMXmu",
		"4ef1c212b319516f1d57430f8560f64f", // 32 hex digits
		"DC20E56B6EEB3DFEDF214D72EE05A804057B86C2550805E4B3411B4C0D8B3362",
		"prefix UzELsz1tgD58bfZiGS1kTJK6Pt0szqS9 suffix",
	}
	for _, v := range secret {
		if why := secretValue(v); why == "" {
			t.Errorf("secretValue(%q) passed it", v)
		}
	}
	ordinary := []string{
		"https://api.example.com",
		"https://api.example.com/v1/customers?page=1&pageSize=100",
		"/health", "/api/v2/status/ready", "bearer", "basic", "svc-user", "Sales CRM (production)",
		"0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",                           // a UUID: hex runs are short
		"/tenants/0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b/customers/health", // a UUID inside a path
		"sk-", "ask-me-later", "task-list-2024",
		"/accounts/receivable/invoices/outstanding/summary", // long path: letters and slashes only
		"ThisIsAVeryLongCamelCaseIdentifierWithoutDigits",   // 32+ letters, no digits
		"HTTPServerRequestHandlerFactoryV2Impl",
		"MyCompanyName-Production-EU-West-Sync-Job",
		"/api/v2/Customers/Accounts/Receivable/Report2024",
		"Region-EU-West-1-Production-Cluster-42",
		"x-ms-version-2021-08-06-and-more-stuff",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // long but not random
		"0000000000000000000000000000000000000000",     // hex, zero entropy
		"deadbeefdeadbeefdeadbeefdeadbeef",             // hex, low entropy
		"keyboard", "The signature is checked with sig", "user@example.com",
		"https://example.com/path:with:colons",
	}
	for _, v := range ordinary {
		if why := secretValue(v); why != "" {
			t.Errorf("secretValue(%q) = %q, want it passed", v, why)
		}
	}
}

func TestCheckSettings_ReportsTheFirstOffendingPath(t *testing.T) {
	cases := []struct {
		doc, path string
	}{
		{`{"a":{"b":[{"c":"ok"},{"password":"x"}]}}`, "settings.a.b[1].password"},
		{`{"headers":[{"name":"X-Trace","value":"` + "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln" + `"}]}`, "settings.headers[0].value"},
		{`{"list":["ok","AKIAIOSFODNN7EXAMPLE"]}`, "settings.list[1]"},
		{`{"ghp_16C7e42F292c6912E7710c838347Ae178B4a":1}`, "settings.ghp_16C7e42F292c6912E7710c838347Ae178B4a"},
	}
	for _, tc := range cases {
		err := CheckSettings([]byte(tc.doc))
		var se *SettingsError
		if !errors.Is(err, ErrSecretInSettings) || !errors.As(err, &se) || se.Path != tc.path {
			t.Errorf("CheckSettings(%s) = %v, want a secret at %s", tc.doc, err, tc.path)
		}
	}
	if err := CheckSettings([]byte(`{"baseUrl":"https://api.example.com","healthPath":"/health","authScheme":"bearer","n":3,"on":true,"x":null}`)); err != nil {
		t.Errorf("ordinary settings: %v", err)
	}
}

// URL settings carry no query string or fragment, and no path segment that looks like a key
// (webhook URLs, ?apikey=…): each is refused with the member's path; ordinary paths, UUID and
// ULID segments, slugs and versioned names pass.
func TestCheckURLSettings_RefusesQueryFragmentAndKeyLikeSegments_PassesOrdinaryPaths(t *testing.T) {
	members := []string{"baseUrl", "healthPath", "syncPath"}
	refused := []struct {
		name, member, value string
		kind                error
	}{
		{"apikey query", "healthPath", "/status?apikey=Zp3mWv7RtY2bNc4Q", ErrInvalidSettings},
		{"access_token query", "healthPath", "/v1/me?access_token=Zp3mWv7RtY2bNc4QxL", ErrInvalidSettings},
		{"harmless query", "syncPath", "/v1/customers?page=1", ErrInvalidSettings},
		{"empty query", "healthPath", "/status?", ErrInvalidSettings},
		{"fragment", "healthPath", "/status#Zp3mWv7RtY2bNc4Q", ErrInvalidSettings},
		{"query in baseUrl", "baseUrl", "https://api.example.com/v1?access_token=Xk29fLq8Zp3mWv7RtY2bNc4Q", ErrInvalidSettings},
		{"key segment in baseUrl", "baseUrl", "https://api.example.com/hooks/8f3kQ2pZ7mWv4RtY", ErrSecretInSettings},
		{"slack webhook path", "healthPath", "/services/T0A1B2C3D/B0E4F5G6H/Xk29fLq8Zp3mWv7RtY2bNc4Q", ErrSecretInSettings},
		{"percent-encoded key segment", "syncPath", "/hooks/%38f3kQ2pZ7mWv4RtY", ErrSecretInSettings},
		{"lower-case alnum key", "healthPath", "/hooks/k3j9x2m4p8q7r5t1", ErrSecretInSettings},
		{"base64url key with a dash", "healthPath", "/hooks/Xk29fLq8-Zp3mWv7R", ErrSecretInSettings},
		{"key after a uuid", "healthPath", "/t/0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b/8f3kQ2pZ7mWv4RtY", ErrSecretInSettings},
		{"credential pattern segment", "healthPath", "/hooks/xoxb-1234-abcdefgh", ErrSecretInSettings},
	}
	for _, tc := range refused {
		raw := settingsJSON(t, map[string]any{tc.member: tc.value, "authScheme": "bearer"})
		err := CheckURLSettings(raw, members)
		var se *SettingsError
		if !errors.As(err, &se) || !errors.Is(err, tc.kind) || se.Path != "settings."+tc.member {
			t.Errorf("%s: %q → %v, want %v at settings.%s", tc.name, tc.value, err, tc.kind, tc.member)
		}
	}
	passed := []struct{ member, value string }{
		{"healthPath", "/api/v2/health"}, {"healthPath", "/status"}, {"healthPath", "/"},
		{"healthPath", "/hooks/order-created"},
		{"syncPath", "/tenants/0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b/customers"},
		{"syncPath", "/tenants/0193A1B2-7C4D-7E8F-9A0B-1C2D3E4F5A6B"},
		{"syncPath", "/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/status"}, // a ULID
		{"syncPath", "/api-v2-customers-export/sync-job-2024-eu-west-1"},
		{"syncPath", "/reports/customers2024summary/2024-01-01T12:00:00Z"},
		{"syncPath", "/handlers/OrderCreatedV2Handler/webhook-v3-order-created-2"},
		{"syncPath", "/accounts/receivable/invoices/outstanding/summary"},
		{"baseUrl", "https://api.example.com/v1"}, {"baseUrl", "https://hooks.example.com/services/T0A1B2C3D/"},
		{"baseUrl", "http://127.0.0.1:8080"},
	}
	for _, tc := range passed {
		raw := settingsJSON(t, map[string]any{tc.member: tc.value, "authScheme": "bearer"})
		if err := CheckURLSettings(raw, members); err != nil {
			t.Errorf("%s %q refused: %v", tc.member, tc.value, err)
		}
	}
	// Members not listed are not URL settings.
	if err := CheckURLSettings(settingsJSON(t, map[string]any{"authScheme": "a?b"}), members); err != nil {
		t.Errorf("a member that is not a URL setting was checked: %v", err)
	}
}
