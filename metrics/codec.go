package metrics

import (
	"bytes"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Namespace prefixes every prefork series (prometheus.BuildFQName).
const Namespace = "prefork"

// Encode gathers reg and encodes it in the length-delimited protobuf
// exposition format, the compact form the master decodes.
func Encode(reg prometheus.Gatherer) ([]byte, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("metrics: encode: %w", err)
		}
	}
	return buf.Bytes(), nil
}
