// SPDX-License-Identifier: Apache-2.0

package swarmq

import (
	"encoding/binary"
	"testing"

	"github.com/hamba/avro/v2"
)

// frameAs writes rec with the schema of catalog id id, framed as swarmq
// frames it (magic byte, big-endian id).
func frameAs(t *testing.T, file string, id uint32, rec map[string]any) []byte {
	t.Helper()
	_, schema := mustSchema(file)
	body, err := avro.Marshal(schema, rec)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(out[1:], id)
	return append(out, body...)
}

// A workflow's tasks' results and events (result-v3.avsc, event-v2.avsc:
// catalog ids 8 and 9, no registry) read like the others; their workflow
// fields are skipped.
func TestWorkflowRecordsDecode(t *testing.T) {
	c := newCodec(nil)
	wf := map[string]any{"string": "wf-1"}
	res, err := c.decodeResult(frameAs(t, "result-v3.avsc", 8, map[string]any{
		"task_id": "wf-1.0", "status": "SUCCEEDED", "output": []byte("out"),
		"error": nil, "agent": map[string]any{"string": "echo"}, "instance": "c1",
		"attempts": 1, "source": map[string]any{"topic": "swarmq-tasks",
			"partition": 2, "offset": int64(7)},
		"created_at": int64(1000), "started_at": int64(1001),
		"finished_at": int64(1002), "workflow_id": wf, "parent_id": nil}))
	if err != nil {
		t.Fatalf("result id 8: %v", err)
	}
	if res.TaskID != "wf-1.0" || res.Status != "SUCCEEDED" || string(res.Output) != "out" ||
		res.Source.Partition != 2 || res.Source.Offset != 7 {
		t.Fatalf("result id 8 read as %+v", res)
	}
	ev, err := c.decodeEvent(frameAs(t, "event-v2.avsc", 9, map[string]any{
		"event_id": "e1", "task_id": map[string]any{"string": "wf-1.0"},
		"type": "succeeded", "at": int64(1002), "instance": "c1", "agent": nil,
		"detail": nil, "workflow_id": wf, "parent_id": nil}))
	if err != nil {
		t.Fatalf("event id 9: %v", err)
	}
	if ev.EventID != "e1" || ev.TaskID == nil || *ev.TaskID != "wf-1.0" || ev.Type != "succeeded" {
		t.Fatalf("event id 9 read as %+v", ev)
	}
	// An id of no result schema is still refused, naming it.
	if _, err := c.decodeResult(frameAs(t, "event-v2.avsc", 4, map[string]any{
		"event_id": "e1", "task_id": nil, "type": "x", "at": int64(1),
		"instance": "c1", "agent": nil, "detail": nil, "workflow_id": nil,
		"parent_id": nil})); err == nil {
		t.Fatal("result with schema id 4 read")
	}
}
