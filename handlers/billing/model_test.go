package billing

import (
	"testing"
	"time"
)

func TestProrate_MinorUnitsRoundHalfUp(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	start, end := day(1), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // 30 days
	cases := []struct {
		name       string
		oldP, newP int64
		s, e, at   time.Time
		want       int64
	}{
		{"half the period left", 4900, 49900, start, end, day(16), 22500}, // 45000 × 15/30
		{"whole period left", 4900, 49900, start, end, start, 45000},      // from the first second
		{"at the end", 4900, 49900, start, end, end, 0},                   // nothing left
		{"after the end", 4900, 49900, start, end, end.Add(time.Hour), 0}, // nothing left
		{"before the start counts the whole period", 0, 4900, start, end, day(1).Add(-time.Hour), 4900},
		{"one day of 30 on 4900", 0, 4900, start, end, day(30), 163},                                       // 163.333… → 163
		{"rounds half up", 0, 1, start, start.Add(2 * time.Second), start.Add(time.Second), 1},             // 0.5 → 1
		{"rounds below half down", 0, 1, start, start.Add(3 * time.Second), start.Add(2 * time.Second), 0}, // 0.333… → 0
		{"two thirds of 100", 0, 100, start, start.Add(3 * time.Second), start.Add(time.Second), 67},       // 66.666… → 67
		{"a downgrade credits nothing", 49900, 4900, start, end, day(16), 0},
		{"same price", 4900, 4900, start, end, day(16), 0},
		{"large prices do not overflow", 0, 9_000_000_000_000_000, start, end, day(16), 4_500_000_000_000_000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Prorate(c.oldP, c.newP, c.s, c.e, c.at); got != c.want {
				t.Fatalf("Prorate(%d, %d, %v, %v, %v) = %d, want %d", c.oldP, c.newP, c.s, c.e, c.at, got, c.want)
			}
		})
	}
}

func TestStatus_Transitions(t *testing.T) {
	legal := map[[2]Status]bool{
		{StatusTrial, StatusActive}: true, {StatusTrial, StatusCancelled}: true,
		{StatusActive, StatusPastDue}: true, {StatusActive, StatusCancelled}: true,
		{StatusPastDue, StatusActive}: true, {StatusPastDue, StatusCancelled}: true,
	}
	all := []Status{StatusTrial, StatusActive, StatusPastDue, StatusCancelled}
	for _, from := range all {
		for _, to := range all {
			if got := from.CanBecome(to); got != legal[[2]Status{from, to}] {
				t.Errorf("%s → %s: %v", from, to, got)
			}
		}
	}
}

func TestAddMonths_ClampsToTheMonthEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z"},
		{"2028-01-31T10:00:00Z", "2028-02-29T10:00:00Z"},
		{"2026-11-15T00:00:00Z", "2026-12-15T00:00:00Z"},
		{"2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z"},
	} {
		in, _ := time.Parse(time.RFC3339, c.in)
		if got := addMonths(in, 1).Format(time.RFC3339); got != c.want {
			t.Errorf("addMonths(%s, 1) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestRollOver_AppliesThePendingDowngradeAtThePeriodEnd(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := Subscription{Status: StatusActive, EditionCode: "enterprise", PendingEdition: "standard",
		PeriodStart: start, PeriodEnd: addMonths(start, 1)}
	if s.EffectiveEdition(start.Add(time.Hour)) != "enterprise" {
		t.Fatal("downgrade applied before the period end")
	}
	if s.EffectiveEdition(s.PeriodEnd) != "standard" {
		t.Fatal("downgrade not effective at the period end")
	}
	if rollOver(&s, start.Add(time.Hour), 1) {
		t.Fatal("rolled within the period")
	}
	if !rollOver(&s, addMonths(start, 2).Add(time.Hour), 1) {
		t.Fatal("did not roll")
	}
	if s.EditionCode != "standard" || s.PendingEdition != "" || !s.PeriodStart.Equal(addMonths(start, 2)) {
		t.Fatalf("after roll: %+v", s)
	}
}

func TestMulAddMinor_RefuseBeyond2p53(t *testing.T) {
	const m = 1<<53 - 1
	for _, c := range []struct {
		q, u, want int64
		ok         bool
	}{{3, 4, 12, true}, {m, 1, m, true}, {m, 2, 0, false}, {1 << 40, 1 << 40, 0, false}, {m + 1, 0, 0, false}, {-1, 1, 0, false}} {
		if got, ok := mulMinor(c.q, c.u); got != c.want || ok != c.ok {
			t.Errorf("mulMinor(%d, %d) = %d %v", c.q, c.u, got, ok)
		}
	}
	if _, ok := addMinor(m, 1); ok {
		t.Error("addMinor(2^53-1, 1) accepted")
	}
	if got, ok := addMinor(m-1, 1); !ok || got != m {
		t.Errorf("addMinor(2^53-2, 1) = %d %v", got, ok)
	}
}
