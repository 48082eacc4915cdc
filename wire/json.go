package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Marshal encodes v as compact JSON without HTML escaping, the way fastjson
// writes it (a Java reader sees "<" where encoding/json would write \u003c).
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
