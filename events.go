package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"spine/shared/kit"
)

// EventsFile is the event catalog as infra/ reads it (its Service Bus topics and subscription
// filters are checked against it); `handler events --write` refreshes it and a test fails when it
// is stale.
const EventsFile = "infra/spine/testdata/app-events.json"

// eventCatalog is what the module list and the declared functions say about events: every topic
// with the types published on it, and every subscription with the types its filter lets through.
type eventCatalog struct {
	Topics        []catalogTopic        `json:"topics"`
	Subscriptions []catalogSubscription `json:"subscriptions"`
}

type catalogTopic struct {
	Name      string   `json:"name"`
	Publishes []string `json:"publishes"`
}

type catalogSubscription struct {
	Topic        string `json:"topic"`
	Subscription string `json:"subscription"`
	Function     string `json:"function"`
	// EventTypes are the types the subscription's filter lets through, sorted: a trigger without
	// types of its own takes every type published on the topic.
	EventTypes []string `json:"eventTypes"`
}

// buildEventCatalog derives the catalog from the module list and the declared registry.
func buildEventCatalog() (eventCatalog, error) {
	reg, err := declaredRegistry()
	if err != nil {
		return eventCatalog{}, err
	}
	var c eventCatalog
	published := map[string][]string{}
	for _, t := range kit.CatalogOf(modules) {
		c.Topics = append(c.Topics, catalogTopic{Name: t.Name, Publishes: t.Publishes})
		published[t.Name] = t.Publishes
	}
	for _, fn := range reg.Functions() {
		sb := fn.ServiceBus
		if sb == nil {
			continue
		}
		pub, ok := published[sb.Topic]
		if !ok {
			return eventCatalog{}, fmt.Errorf("%s consumes topic %q, which no module publishes", fn.Name, sb.Topic)
		}
		types := slices.Clone(sb.EventTypes)
		if len(types) == 0 {
			types = slices.Clone(pub)
		}
		for _, t := range types {
			if !slices.Contains(pub, t) {
				return eventCatalog{}, fmt.Errorf("%s filters for %s, which topic %s does not carry", fn.Name, t, sb.Topic)
			}
		}
		sort.Strings(types)
		c.Subscriptions = append(c.Subscriptions, catalogSubscription{Topic: sb.Topic, Subscription: sb.Subscription,
			Function: fn.Name, EventTypes: types})
	}
	sort.Slice(c.Subscriptions, func(i, j int) bool {
		a, b := c.Subscriptions[i], c.Subscriptions[j]
		return a.Topic+"/"+a.Subscription < b.Topic+"/"+b.Subscription
	})
	return c, nil
}

// eventCatalogJSON is the catalog as EventsFile holds it.
func eventCatalogJSON() ([]byte, error) {
	c, err := buildEventCatalog()
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	return append(b, '\n'), err
}

// eventsCmd prints the event catalog: every event type with its topic (= publisher) and the
// functions that consume it; --json prints what EventsFile holds and --write refreshes that file.
func eventsCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the catalog as JSON")
	write := fs.Bool("write", false, "write "+EventsFile)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *asJSON || *write {
		b, err := eventCatalogJSON()
		if err != nil {
			return err
		}
		if *write {
			return os.WriteFile(EventsFile, b, 0o644)
		}
		_, err = stdout.Write(b)
		return err
	}
	c, err := buildEventCatalog()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tTOPIC (PUBLISHER)\tCONSUMED BY")
	for _, t := range c.Topics {
		for _, typ := range t.Publishes {
			var by []string
			for _, s := range c.Subscriptions {
				if s.Topic == t.Name && slices.Contains(s.EventTypes, typ) {
					by = append(by, s.Function+" ("+s.Subscription+")")
				}
			}
			if len(by) == 0 {
				by = []string{"-"}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", typ, t.Name, strings.Join(by, ", "))
		}
	}
	return tw.Flush()
}
