package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLoad_NotificationsDefaults(t *testing.T) {
	c, err := Load(env(valid()), services)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Notifications
	if n.SMTPAddr != "" || n.SMTPFrom != "Spine <no-reply@spine.local>" || n.InlineBodyMax != 8<<10 || n.RetryScale != 1 ||
		n.EndpointDisableAfter != 120*time.Hour {
		t.Fatalf("%+v", n)
	}
}

func TestLoad_NotificationsSettingsRead(t *testing.T) {
	m := valid()
	m["SPINE_SMTP_ADDR"], m["SPINE_SMTP_USERNAME"], m["SPINE_SMTP_PASSWORD"] = "smtp.example.com:587", "relay", "relay-s3cret"
	m["SPINE_NOTIFICATIONS_INLINE_BODY_MAX"], m["SPINE_NOTIFICATIONS_RETRY_SCALE"] = "4KiB", "0.001"
	m["SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER"] = "10m"
	c, err := Load(env(m), services)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Notifications
	if n.SMTPAddr != "smtp.example.com:587" || n.SMTPPassword != "relay-s3cret" || n.InlineBodyMax != 4<<10 || n.RetryScale != 0.001 ||
		n.EndpointDisableAfter != 10*time.Minute {
		t.Fatalf("%+v", n)
	}
	if logged := fmt.Sprint(c.LogValue()); strings.Contains(logged, "relay-s3cret") {
		t.Errorf("the SMTP password is logged: %s", logged)
	}
}

func TestLoad_NotificationsSettingsRefused(t *testing.T) {
	for k, v := range map[string]string{
		"SPINE_SMTP_ADDR":                            "smtp.example.com",
		"SPINE_NOTIFICATIONS_INLINE_BODY_MAX":        "2MiB",
		"SPINE_NOTIFICATIONS_RETRY_SCALE":            "0",
		"SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER": "5ms",
	} {
		m := valid()
		m[k] = v
		if _, err := Load(env(m), services); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
