package reporting

import (
	"archive/zip"
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// rowWriter writes one artifact, row by row, to an io.Writer; nothing but the current row (and,
// for XLSX, the sheet's bounded stream buffer) is held in memory.
type rowWriter interface {
	// Row writes one row: one value per column, as scanRow reads them.
	Row(vals []any) error
	// Close finishes the artifact (flushes, closes the archive). It does not close the io.Writer.
	Close() error
}

// newRowWriter starts an artifact of format f with cols' header row.
func newRowWriter(f Format, w io.Writer, cols []Column) (rowWriter, error) {
	switch f {
	case FormatCSV:
		return newCSVWriter(w, cols)
	case FormatJSON:
		return &jsonlWriter{w: bufio.NewWriterSize(w, 32<<10), cols: cols}, nil
	case FormatXLSX:
		return newXLSXWriter(w, cols)
	}
	return nil, fmt.Errorf("reporting: format %q", f)
}

// text is a value's text in CSV (and XLSX for instants and dates): RFC 3339 UTC instants,
// YYYY-MM-DD dates, "" for NULL.
func text(c Column, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case time.Time:
		if c.Kind == KindDate {
			return x.UTC().Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// ---- CSV (RFC 4180, encoding/csv) ----

type csvWriter struct {
	b    *bufio.Writer
	w    *csv.Writer
	cols []Column
	rec  []string
}

func newCSVWriter(w io.Writer, cols []Column) (*csvWriter, error) {
	b := bufio.NewWriterSize(w, 32<<10)
	cw := &csvWriter{b: b, w: csv.NewWriter(b), cols: cols, rec: make([]string, len(cols))}
	for i, c := range cols {
		cw.rec[i] = c.Name
	}
	return cw, cw.w.Write(cw.rec)
}

func (cw *csvWriter) Row(vals []any) error {
	for i, c := range cw.cols {
		s := text(c, vals[i])
		if c.Kind == KindText {
			s = defuseFormula(s)
		}
		cw.rec[i] = s
	}
	return cw.w.Write(cw.rec)
}

func (cw *csvWriter) Close() error {
	cw.w.Flush()
	if err := cw.w.Error(); err != nil {
		return err
	}
	return cw.b.Flush()
}

// defuseFormula guards a text cell against formula injection (OWASP "CSV injection"): a value
// starting with = + - @, a tab or a carriage return is what spreadsheets evaluate, so it gets a
// leading apostrophe and is shown as text. Counts and times are written by the service and never
// start so; only text columns, which carry event-fed data (emails, codes), are guarded.
func defuseFormula(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// ---- JSON Lines: one object per row ----

type jsonlWriter struct {
	w    *bufio.Writer
	cols []Column
}

func (jw *jsonlWriter) Row(vals []any) error {
	if err := jw.w.WriteByte('{'); err != nil {
		return err
	}
	for i, c := range jw.cols {
		if i > 0 {
			_ = jw.w.WriteByte(',')
		}
		name, _ := json.Marshal(c.Name)
		_, _ = jw.w.Write(name)
		_ = jw.w.WriteByte(':')
		var v any = vals[i]
		if t, ok := v.(time.Time); ok {
			v = text(c, t)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := jw.w.Write(b); err != nil {
			return err
		}
	}
	_, err := jw.w.WriteString("}\n")
	return err
}

func (jw *jsonlWriter) Close() error { return jw.w.Flush() }

// ---- XLSX (excelize StreamWriter) ----

// xlsxWriter streams rows into one sheet with excelize's StreamWriter (which keeps at most
// excelize.StreamChunkSize, 16 MiB, of sheet XML in memory and spills the rest to a temporary
// file) and writes the archive straight into w: the File's ZipWriter hook is pointed at w, so the
// package's WriteToBuffer leaves its buffer empty instead of holding the whole zip.
type xlsxWriter struct {
	f    *excelize.File
	sw   *excelize.StreamWriter
	w    io.Writer
	cols []Column
	row  int
	vals []any
}

func newXLSXWriter(w io.Writer, cols []Column) (*xlsxWriter, error) {
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	xw := &xlsxWriter{f: f, sw: sw, w: w, cols: cols, row: 1, vals: make([]any, len(cols))}
	for i, c := range cols {
		xw.vals[i] = c.Name
	}
	if err := xw.write(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return xw, nil
}

func (xw *xlsxWriter) write() error {
	cell, err := excelize.CoordinatesToCellName(1, xw.row)
	if err != nil {
		return err
	}
	xw.row++
	return xw.sw.SetRow(cell, xw.vals)
}

func (xw *xlsxWriter) Row(vals []any) error {
	for i, c := range xw.cols {
		switch v := vals[i].(type) {
		case nil:
			xw.vals[i] = nil
		case int64:
			xw.vals[i] = v
		case time.Time:
			xw.vals[i] = text(c, v)
		case string:
			// Spreadsheets evaluate cells written as formulas only; excelize writes strings as
			// inline text, but a file opened and re-saved elsewhere may not keep that: guard too.
			xw.vals[i] = defuseFormula(v)
		default:
			xw.vals[i] = text(c, v)
		}
	}
	return xw.write()
}

func (xw *xlsxWriter) Close() error {
	defer xw.f.Close()
	if err := xw.sw.Flush(); err != nil {
		return err
	}
	xw.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(xw.w) })
	buf, err := xw.f.WriteToBuffer()
	if err != nil {
		return err
	}
	if buf.Len() != 0 { // the hook above sends every byte to w
		return fmt.Errorf("reporting: xlsx: %d bytes buffered instead of streamed", buf.Len())
	}
	return nil
}
