package text

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CheckJSON applies Check to every string of the JSON text raw (member names and values, at any
// depth), reading the bytes as sent. It also refuses what a JSON decoder silently turns into U+FFFD,
// so that the check above it cannot see: bytes that are not UTF-8 and \u escapes of unpaired UTF-16
// surrogates ("\ud800"). It returns the path of the first string refused, below base ("name",
// "payload.items[2]", "labels.k"), or a nil error. Malformed JSON is not its business: the decoder
// that reads raw refuses it; CheckJSON only promises not to report a valid string as refused.
func CheckJSON(raw []byte, base string) (path string, err error) {
	type frame struct {
		object bool
		key    string // object: the member name last read
		index  int    // array: the element being read
	}
	var stack []frame
	expectKey := false
	pathOf := func() string {
		p := base
		for _, f := range stack {
			if f.object {
				p = join(p, f.key)
			} else {
				p += "[" + strconv.Itoa(f.index) + "]"
			}
		}
		return p
	}
	valueStarts := func() {
		if n := len(stack); n > 0 && !stack[n-1].object {
			stack[n-1].index++
		}
	}
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case '{', '[':
			valueStarts()
			stack = append(stack, frame{object: c == '{', index: -1})
			expectKey = c == '{'
			i++
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
			i++
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
			i++
		case '"':
			isKey := expectKey && len(stack) > 0 && stack[len(stack)-1].object
			if !isKey {
				valueStarts()
			}
			s, n, err := jsonString(raw[i:], isKey)
			if isKey {
				stack[len(stack)-1].key = s // a refused name is named itself
				expectKey = false
			}
			if err != nil {
				return pathOf(), err
			}
			i += n
		case ' ', '\t', '\n', '\r', ':':
			i++
		default: // a number or a literal
			valueStarts()
			for i < len(raw) && !strings.ContainsRune(",]} \t\n\r", rune(raw[i])) {
				i++
			}
		}
	}
	return "", nil
}

// jsonString reads the JSON string at the start of b (b[0] is its opening quote) and returns its
// length in bytes, its text when keep is set (for a member name in a path), and the first reason
// Check refuses it.
func jsonString(b []byte, keep bool) (s string, n int, err error) {
	var sb strings.Builder
	var refused error
	refuse := func(e error) {
		if refused == nil {
			refused = e
		}
	}
	add := func(r rune) {
		if keep {
			sb.WriteRune(r)
		}
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			refuse(errors.Join(ErrInvalid, ErrControl))
		}
	}
	i := 1
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return sb.String(), i + 1, refused
		case c == '\\' && i+1 < len(b):
			e := b[i+1]
			if e != 'u' {
				if r, ok := simpleEscapes[e]; ok {
					add(r)
				}
				i += 2
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				i += 2
				continue
			}
			i += 6
			switch {
			case r >= 0xd800 && r <= 0xdbff: // a high surrogate needs a low one right after it
				if lo, ok := hex4(b, i+2); ok && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' && lo >= 0xdc00 && lo <= 0xdfff {
					add(0x10000 + (r-0xd800)<<10 + (lo - 0xdc00))
					i += 6
					continue
				}
				add(utf8.RuneError)
				refuse(errors.Join(ErrInvalid, ErrUTF8))
			case r >= 0xdc00 && r <= 0xdfff:
				add(utf8.RuneError)
				refuse(errors.Join(ErrInvalid, ErrUTF8))
			default:
				add(r)
			}
		case c < utf8.RuneSelf:
			add(rune(c))
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				refuse(errors.Join(ErrInvalid, ErrUTF8))
			}
			add(r)
			i += size
		}
	}
	return sb.String(), len(b), refused // unterminated: malformed JSON, refused by its decoder
}

var simpleEscapes = map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads the four hexadecimal digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(v), err == nil
}
