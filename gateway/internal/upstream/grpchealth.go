package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"

	"google.golang.org/protobuf/encoding/protowire"
)

// The gRPC health protocol (grpc.health.v1), spoken without the gRPC
// library: one unary call of Health/Check whose request and response are
// one-field protobuf messages, encoded here with protowire.
const (
	grpcHealthPath = "/grpc.health.v1.Health/Check"
	// servingStatus is HealthCheckResponse.ServingStatus SERVING.
	servingStatus = 1
	// maxHealthAnswer bounds the response read: the answer is a few bytes.
	maxHealthAnswer = 1 << 10
)

// grpcHealthRequest encodes a length-prefixed HealthCheckRequest
// {service = 1}.
func grpcHealthRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = protowire.AppendTag(msg, 1, protowire.BytesType)
		msg = protowire.AppendString(msg, service)
	}
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// servingOf reports whether a length-prefixed HealthCheckResponse says
// SERVING in its status field (1).
func servingOf(frame []byte) bool {
	if len(frame) < 5 || frame[0] != 0 || int(binary.BigEndian.Uint32(frame[1:])) != len(frame)-5 {
		return false // short, compressed or not one whole message
	}
	msg := frame[5:]
	serving := false
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return false
		}
		msg = msg[n:]
		if num == 1 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return false
			}
			serving = v == servingStatus
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return false
		}
		msg = msg[m:]
	}
	return serving
}

// probeGRPC reports whether the target answers SERVING to a
// grpc.health.v1 Check of service, with grpc-status 0.
func probeGRPC(ctx context.Context, client *http.Client, t *Target, service string) bool {
	u := *t.URL
	u.Path = singleJoin(u.Path, grpcHealthPath)
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(grpcHealthRequest(service)))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "gitgate-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	if err != nil || resp.StatusCode != http.StatusOK {
		return false
	}
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" {
		st = resp.Header.Get("Grpc-Status") // trailers-only
	}
	return st == "0" && servingOf(body)
}
