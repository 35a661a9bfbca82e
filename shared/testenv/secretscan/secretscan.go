// Package secretscan collects everything a test's stores hold, as text, so a test can prove a
// secret value is in none of them: a PostgreSQL database's every row (pg_dump as the cluster
// superuser, so row-level security hides nothing), every Redis key's value (SCAN, then DUMP),
// and every blob of every container of the storage account (Azurite). Tests only.
package secretscan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/redis/go-redis/v9"
)

// Corpus is a named body of text a scan searched.
type Corpus struct {
	Name string
	Text []byte
}

// Hits returns, for every needle found in a corpus, "<corpus>: <needle's label>"; labels[i]
// names needles[i] in the answer (never the needle itself, which is a secret).
func Hits(corpora []Corpus, needles, labels []string) []string {
	var out []string
	for _, c := range corpora {
		for i, n := range needles {
			if n != "" && bytes.Contains(c.Text, []byte(n)) {
				out = append(out, c.Name+": "+labels[i])
			}
		}
	}
	return out
}

// Postgres dumps every row of the database adminURL names (pg_dump --data-only, which reads
// every table of every schema with row security off: the URL must be a superuser's).
func Postgres(ctx context.Context, name, adminURL string) (Corpus, error) {
	cmd := exec.CommandContext(ctx, "pg_dump", "--data-only", "--no-owner", "--dbname="+adminURL)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return Corpus{}, fmt.Errorf("secretscan: pg_dump %s: %v: %s", name, err, strings.TrimSpace(errb.String()))
	}
	return Corpus{Name: "postgres " + name, Text: out.Bytes()}, nil
}

// Redis reads every key of the database redisURL names: its name and its DUMP (the serialised
// value of any type, in which strings, hash fields, list and set members appear as they are, or
// LZF-compressed when long — so string and hash keys are read as they are too).
func Redis(ctx context.Context, redisURL string) (Corpus, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return Corpus{}, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	var buf bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		buf.WriteString(k + "\n")
		if d, err := rdb.Dump(ctx, k).Result(); err == nil {
			buf.WriteString(d + "\n")
		}
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "string":
			if v, err := rdb.Get(ctx, k).Result(); err == nil {
				buf.WriteString(v + "\n")
			}
		case "hash":
			if m, err := rdb.HGetAll(ctx, k).Result(); err == nil {
				for f, v := range m {
					buf.WriteString(f + "=" + v + "\n")
				}
			}
		}
	}
	if err := iter.Err(); err != nil {
		return Corpus{}, err
	}
	return Corpus{Name: "redis", Text: buf.Bytes()}, nil
}

// Blobs downloads every blob of every container of the account connStr names.
func Blobs(ctx context.Context, connStr string) (Corpus, error) {
	c, err := azblob.NewClientFromConnectionString(connStr, nil)
	if err != nil {
		return Corpus{}, err
	}
	var buf bytes.Buffer
	cp := c.NewListContainersPager(nil)
	for cp.More() {
		page, err := cp.NextPage(ctx)
		if err != nil {
			return Corpus{}, err
		}
		for _, ct := range page.ContainerItems {
			bp := c.NewListBlobsFlatPager(*ct.Name, nil)
			for bp.More() {
				bpage, err := bp.NextPage(ctx)
				if err != nil {
					return Corpus{}, err
				}
				for _, b := range bpage.Segment.BlobItems {
					buf.WriteString(*ct.Name + "/" + *b.Name + "\n")
					resp, err := c.DownloadStream(ctx, *ct.Name, *b.Name, nil)
					if bloberror.HasCode(err, bloberror.BlobArchived) {
						// In the archive access tier (the notification archive's tests move bodies
						// and attachments there, maybe since the listing): unreadable without a
						// rehydration; its name is in the corpus.
						continue
					}
					if err != nil {
						return Corpus{}, err
					}
					_, err = io.Copy(&buf, resp.Body)
					resp.Body.Close()
					if err != nil {
						return Corpus{}, err
					}
					buf.WriteByte('\n')
				}
			}
		}
	}
	return Corpus{Name: "blobs", Text: buf.Bytes()}, nil
}
