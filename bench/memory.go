package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// memSnapshot is where the handler's memory sits at one point of the run: the kernel's view
// (/proc/<pid>/smaps_rollup) beside the Go runtime's (runtime.MemStats, read from the heap
// profile's debug=1 text). Its heap profile is written to .bench/heap-<label>.pb.gz, for
// `go tool pprof -sample_index=inuse_space`.
type memSnapshot struct {
	Label string `json:"label"`
	// RssMB, AnonMB and FileMB are smaps_rollup's Rss, Anonymous and Rss minus Anonymous.
	RssMB  float64 `json:"rssMb"`
	AnonMB float64 `json:"anonMb"`
	FileMB float64 `json:"fileMb"`
	// HeapInuseMB, HeapRetainedMB (HeapIdle − HeapReleased: free heap the runtime has not returned
	// to the OS), StackInuseMB and SysMB are runtime.MemStats figures.
	HeapInuseMB    float64 `json:"heapInuseMb"`
	HeapRetainedMB float64 `json:"heapRetainedMb"`
	StackInuseMB   float64 `json:"stackInuseMb"`
	SysMB          float64 `json:"sysMb"`
	NumGC          int64   `json:"numGc"`
	Goroutines     int64   `json:"goroutines"`
	HeapProfile    string  `json:"heapProfile,omitempty"`
}

func (s memSnapshot) String() string {
	return fmt.Sprintf("memory %s: RSS %.1f MB (anon %.1f, file %.1f); HeapInuse %.1f MB, HeapIdle−HeapReleased %.1f MB, StackInuse %.1f MB, Sys %.1f MB, %d GCs, %d goroutines",
		s.Label, s.RssMB, s.AnonMB, s.FileMB, s.HeapInuseMB, s.HeapRetainedMB, s.StackInuseMB, s.SysMB, s.NumGC, s.Goroutines)
}

// memorySnapshot records a memSnapshot of the running handler under label, logs it and keeps it in
// the results. A failure is a note, never the run's failure: the figures are evidence, not a case.
func (b *bench) memorySnapshot(ctx context.Context, label string) {
	s, err := b.takeMemSnapshot(ctx, label)
	if err != nil {
		b.res.note("memory snapshot %s: %v", label, err)
		return
	}
	b.logf("%s", s)
	b.res.MemorySnapshots = append(b.res.MemorySnapshots, s)
}

func (b *bench) takeMemSnapshot(ctx context.Context, label string) (memSnapshot, error) {
	s := memSnapshot{Label: label}
	smaps, err := readKB(fmt.Sprintf("/proc/%d/smaps_rollup", b.server.cmd.Process.Pid))
	if err != nil {
		return s, err
	}
	s.RssMB, s.AnonMB = smaps["Rss"]/1024, smaps["Anonymous"]/1024
	s.FileMB = s.RssMB - s.AnonMB
	if b.pprofPort == 0 {
		return s, nil
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", b.pprofPort)
	// The binary profile first (it runs a GC, as does the debug=1 text), then MemStats as it stands.
	prof := filepath.Join(b.out, "heap-"+label+".pb.gz")
	if err := httpToFile(ctx, base+"heap", prof); err != nil {
		return s, err
	}
	s.HeapProfile = prof
	text, err := httpGet(ctx, base+"heap?debug=1")
	if err != nil {
		return s, err
	}
	ms := memStatsFromText(text)
	const mb = 1 << 20
	s.HeapInuseMB = float64(ms["HeapInuse"]) / mb
	s.HeapRetainedMB = float64(ms["HeapIdle"]-ms["HeapReleased"]) / mb
	s.StackInuseMB = float64(ms["Stack"]) / mb
	s.SysMB = float64(ms["Sys"]) / mb
	s.NumGC = ms["NumGC"]
	if g, err := httpGet(ctx, base+"goroutine?debug=1"); err == nil {
		first, _, _ := strings.Cut(g, "\n")
		s.Goroutines, _ = strconv.ParseInt(strings.TrimPrefix(first, "goroutine profile: total "), 10, 64)
	}
	return s, nil
}

// readKB reads a /proc file of "Key:   123 kB" lines into Key → kB.
func readKB(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if !ok || len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseFloat(fs[0], 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// memStatsFromText reads the "# Name = value" lines that end a heap profile's debug=1 text
// ("# Stack = inuse / sys" keeps the in-use figure).
func memStatsFromText(text string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "# ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, " = ")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, " ")
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

func httpToFile(ctx context.Context, url, path string) error {
	body, err := httpGet(ctx, url)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(body), 0o644)
}
