// SPDX-License-Identifier: Apache-2.0

// The wire contract (docs/wire.md): framing, schema ids and JSON output.
//
// DESIGN: schema ids come from swarmq's embedded catalog (task 1 or 5,
// result 2, 6 or 8, event 3 or 9) unless a Schema Registry is configured; then the
// Task schema is registered under "<topic>-value" (Confluent's
// TopicNameStrategy, as swarmq does) and results and events are decoded
// with the writer schema fetched by the id in their framing (cached: an
// id's schema never changes). Records are decoded into a map and read by
// field name, so a writer schema with fields in another order, or with
// fields this package does not know, still reads. logicalType annotations
// are stripped before parsing: times stay int64 milliseconds. A value
// starting with '{' is swarmq's JSON output (output.format=json).

package swarmq

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

//go:embed schemas/*.avsc
var schemaFiles embed.FS

// Catalog ids of the embedded catalog (schemas/README.md).
const (
	catalogTask     = 1
	catalogResult   = 2
	catalogEvent    = 3
	catalogTaskV2   = 5
	catalogResultV2 = 6
	// A workflow's tasks' results and events (docs/workflows.md), with
	// their workflow_id and parent_id.
	catalogResultV3 = 8
	catalogEventV2  = 9
)

func stripLogical(node any) any {
	switch v := node.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if k != "logicalType" {
				out[k] = stripLogical(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = stripLogical(x)
		}
		return out
	}
	return node
}

// parseSchema parses a schema's JSON text with its logical types removed,
// in a cache of its own (writer schemas of one name may differ).
func parseSchema(text string) (avro.Schema, error) {
	var node any
	if err := json.Unmarshal([]byte(text), &node); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	stripped, err := json.Marshal(stripLogical(node))
	if err != nil {
		return nil, err
	}
	return avro.ParseBytesWithCache(stripped, "", &avro.SchemaCache{})
}

func mustSchema(name string) (string, avro.Schema) {
	text, err := schemaFiles.ReadFile("schemas/" + name)
	if err != nil {
		panic(err)
	}
	s, err := parseSchema(string(text))
	if err != nil {
		panic(fmt.Sprintf("schemas/%s: %v", name, err))
	}
	return string(text), s
}

// registry is a minimal Confluent-REST Schema Registry client.
type registry struct {
	url    string
	auth   string
	client *http.Client

	mu   sync.Mutex
	byID map[int]avroSchema
}

func (r *registry) call(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		return fmt.Errorf("schema registry %s: %w", r.url, err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", "Basic "+
			base64.StdEncoding.EncodeToString([]byte(r.auth)))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("schema registry %s: %s %s failed: %w", r.url, method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<22))
	if resp.StatusCode/100 != 2 {
		detail := string(data)
		if len(detail) > 300 {
			detail = detail[:300]
		}
		return fmt.Errorf("schema registry %s: %s %s answered HTTP %d: %s",
			r.url, method, path, resp.StatusCode, detail)
	}
	return json.Unmarshal(data, out)
}

func (r *registry) register(subject, schema string) (int, error) {
	var got struct {
		ID int `json:"id"`
	}
	err := r.call("POST", "/subjects/"+url.PathEscape(subject)+"/versions",
		map[string]string{"schema": schema}, &got)
	return got.ID, err
}

func (r *registry) schema(id int) (avro.Schema, error) {
	r.mu.Lock()
	s := r.byID[id]
	r.mu.Unlock()
	if s != nil {
		return s, nil
	}
	var got struct {
		Schema string `json:"schema"`
	}
	if err := r.call("GET", fmt.Sprintf("/schemas/ids/%d", id), nil, &got); err != nil {
		return nil, err
	}
	s, err := parseSchema(got.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	r.mu.Lock()
	r.byID[id] = s
	r.mu.Unlock()
	return s, nil
}

// codec frames tasks and reads results and events.
type codec struct {
	reg      *registry
	taskV1   avro.Schema
	taskV2   avro.Schema
	taskText string
	catalog  map[int]avro.Schema

	mu      sync.Mutex
	taskIDs map[string]int
}

func newCodec(reg *registry) *codec {
	_, v1 := mustSchema("task.avsc")
	text, v2 := mustSchema("task-v2.avsc")
	_, r1 := mustSchema("result.avsc")
	_, r2 := mustSchema("result-v2.avsc")
	_, ev := mustSchema("event.avsc")
	_, r3 := mustSchema("result-v3.avsc")
	_, ev2 := mustSchema("event-v2.avsc")
	return &codec{reg: reg, taskV1: v1, taskV2: v2, taskText: text,
		catalog: map[int]avro.Schema{catalogResult: r1,
			catalogResultV2: r2, catalogEvent: ev,
			catalogResultV3: r3, catalogEventV2: ev2},
		taskIDs: map[string]int{}}
}

// avroTask is the Task record (task-v2.avsc; times as milliseconds).
type avroTask struct {
	ID           string            `avro:"id"`
	Type         string            `avro:"type"`
	Priority     string            `avro:"priority"`
	Capabilities []string          `avro:"capabilities"`
	Payload      []byte            `avro:"payload"`
	Key          *string           `avro:"key"`
	CreatedAt    int64             `avro:"created_at"`
	TimeoutMs    int64             `avro:"timeout_ms"`
	MaxAttempts  int32             `avro:"max_attempts"`
	Attempt      int32             `avro:"attempt"`
	Headers      map[string]string `avro:"headers"`
	NotBefore    *int64            `avro:"not_before"`
}

// avroTaskV1 is the same without not_before (task.avsc, catalog id 1).
type avroTaskV1 struct {
	ID           string            `avro:"id"`
	Type         string            `avro:"type"`
	Priority     string            `avro:"priority"`
	Capabilities []string          `avro:"capabilities"`
	Payload      []byte            `avro:"payload"`
	Key          *string           `avro:"key"`
	CreatedAt    int64             `avro:"created_at"`
	TimeoutMs    int64             `avro:"timeout_ms"`
	MaxAttempts  int32             `avro:"max_attempts"`
	Attempt      int32             `avro:"attempt"`
	Headers      map[string]string `avro:"headers"`
}

func (c *codec) taskSchemaID(topic string) (int, error) {
	c.mu.Lock()
	id, ok := c.taskIDs[topic]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := c.reg.register(topic+"-value", c.taskText)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.taskIDs[topic] = id
	c.mu.Unlock()
	return id, nil
}

func frame(id int, body []byte) []byte {
	out := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, body...)
}

func (c *codec) encodeTask(t *Task, topic string) ([]byte, error) {
	rec := avroTask{ID: t.ID, Type: t.Type, Priority: string(t.Priority),
		Capabilities: t.Capabilities, Payload: t.Payload, Key: t.Key,
		CreatedAt: t.CreatedAt.UnixMilli(), TimeoutMs: t.Timeout.Milliseconds(),
		MaxAttempts: int32(t.MaxAttempts), Attempt: 1, Headers: t.Headers}
	if rec.Capabilities == nil {
		rec.Capabilities = []string{}
	}
	if rec.Headers == nil {
		rec.Headers = map[string]string{}
	}
	if !t.NotBefore.IsZero() {
		ms := t.NotBefore.UnixMilli()
		rec.NotBefore = &ms
	}
	if c.reg != nil {
		id, err := c.taskSchemaID(topic)
		if err != nil {
			return nil, err
		}
		body, err := avro.Marshal(c.taskV2, rec)
		return frame(id, body), err
	}
	if rec.NotBefore == nil {
		// Catalog id 1 (task.avsc): what swarmq's own tools write when
		// not_before is unused, readable by swarmq a version back.
		body, err := avro.Marshal(c.taskV1, avroTaskV1{rec.ID, rec.Type,
			rec.Priority, rec.Capabilities, rec.Payload, rec.Key,
			rec.CreatedAt, rec.TimeoutMs, rec.MaxAttempts, rec.Attempt,
			rec.Headers})
		return frame(catalogTask, body), err
	}
	body, err := avro.Marshal(c.taskV2, rec)
	return frame(catalogTaskV2, body), err
}

// decodeAvro decodes a framed value into a map by its writer schema.
func (c *codec) decodeAvro(value []byte, kind string, catalogIDs ...int) (map[string]any, error) {
	if len(value) < 5 || value[0] != 0 {
		first := "missing"
		if len(value) > 0 {
			first = fmt.Sprintf("%02x", value[0])
		}
		return nil, fmt.Errorf("not a swarmq %s: byte 0 is %s, expected 00 (Avro framing) or '{' (JSON)", kind, first)
	}
	id := int(binary.BigEndian.Uint32(value[1:5]))
	var writer avro.Schema
	if c.reg != nil {
		s, err := c.reg.schema(id)
		if err != nil {
			return nil, err
		}
		writer = s
	} else {
		for _, want := range catalogIDs {
			if id == want {
				writer = c.catalog[id]
			}
		}
		if writer == nil {
			return nil, fmt.Errorf("schema id %d is not a catalog %s id %v; was it written with a schema registry (Config.RegistryURL)?", id, kind, catalogIDs)
		}
	}
	rec := map[string]any{}
	if err := avro.Unmarshal(writer, value[5:], &rec); err != nil {
		return nil, fmt.Errorf("%s with schema id %d does not decode: %w", kind, id, err)
	}
	return rec, nil
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case map[string]any: // a union branch by name
		for _, x := range s {
			return str(x)
		}
	}
	return ""
}

func optStr(v any) *string {
	if v == nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return nil
	}
	s := str(v)
	return &s
}

func num(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

func msTime(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}

func (c *codec) decodeResult(value []byte) (*Result, error) {
	if len(value) > 0 && value[0] == '{' {
		return decodeResultJSON(value)
	}
	m, err := c.decodeAvro(value, "result", catalogResult, catalogResultV2,
		catalogResultV3)
	if err != nil {
		return nil, err
	}
	src, _ := m["source"].(map[string]any)
	out, _ := m["output"].([]byte)
	return &Result{TaskID: str(m["task_id"]), Status: Status(str(m["status"])),
		Output: out, Error: optStr(m["error"]), Agent: optStr(m["agent"]),
		Instance: str(m["instance"]), Attempts: int(num(m["attempts"])),
		Source: Source{Topic: str(src["topic"]),
			Partition: int32(num(src["partition"])),
			Offset:    num(src["offset"])},
		CreatedAt:  msTime(num(m["created_at"])),
		StartedAt:  startedAt(num(m["started_at"])),
		FinishedAt: msTime(num(m["finished_at"])),
		// Absent from a writer schema before result-v3.avsc: nil.
		WorkflowID: optStr(m["workflow_id"]),
		ParentID:   optStr(m["parent_id"])}, nil
}

func startedAt(ms int64) time.Time {
	if ms == 0 {
		return time.Time{} // never started
	}
	return msTime(ms)
}

func decodeResultJSON(value []byte) (*Result, error) {
	var j struct {
		TaskID       string  `json:"task_id"`
		Status       string  `json:"status"`
		OutputBase64 string  `json:"output_base64"`
		Error        *string `json:"error"`
		Agent        *string `json:"agent"`
		Instance     string  `json:"instance"`
		Attempts     int     `json:"attempts"`
		Source       Source  `json:"source"`
		CreatedAtMs  int64   `json:"created_at_ms"`
		StartedAtMs  int64   `json:"started_at_ms"`
		FinishedAtMs int64   `json:"finished_at_ms"`
		WorkflowID   *string `json:"workflow_id"`
		ParentID     *string `json:"parent_id"`
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("JSON result does not read: %w", err)
	}
	out, err := base64.StdEncoding.DecodeString(j.OutputBase64)
	if err != nil {
		return nil, fmt.Errorf("JSON result %s: output_base64: %w", j.TaskID, err)
	}
	return &Result{TaskID: j.TaskID, Status: Status(j.Status), Output: out,
		Error: j.Error, Agent: j.Agent, Instance: j.Instance,
		Attempts: j.Attempts, Source: j.Source,
		CreatedAt: msTime(j.CreatedAtMs), StartedAt: startedAt(j.StartedAtMs),
		FinishedAt: msTime(j.FinishedAtMs), WorkflowID: j.WorkflowID,
		ParentID: j.ParentID}, nil
}

func (c *codec) decodeEvent(value []byte) (*Event, error) {
	if len(value) > 0 && value[0] == '{' {
		var j struct {
			EventID    string  `json:"event_id"`
			TaskID     *string `json:"task_id"`
			Type       string  `json:"type"`
			AtMs       int64   `json:"at_ms"`
			Instance   string  `json:"instance"`
			Agent      *string `json:"agent"`
			Detail     *string `json:"detail"`
			WorkflowID *string `json:"workflow_id"`
			ParentID   *string `json:"parent_id"`
		}
		if err := json.Unmarshal(value, &j); err != nil {
			return nil, fmt.Errorf("JSON event does not read: %w", err)
		}
		return &Event{EventID: j.EventID, TaskID: j.TaskID, Type: j.Type,
			At: msTime(j.AtMs), Instance: j.Instance, Agent: j.Agent,
			Detail: j.Detail, WorkflowID: j.WorkflowID,
			ParentID: j.ParentID}, nil
	}
	m, err := c.decodeAvro(value, "event", catalogEvent, catalogEventV2)
	if err != nil {
		return nil, err
	}
	return &Event{EventID: str(m["event_id"]), TaskID: optStr(m["task_id"]),
		Type: str(m["type"]), At: msTime(num(m["at"])),
		Instance: str(m["instance"]), Agent: optStr(m["agent"]),
		Detail: optStr(m["detail"]), WorkflowID: optStr(m["workflow_id"]),
		ParentID: optStr(m["parent_id"])}, nil
}

type avroSchema = avro.Schema
