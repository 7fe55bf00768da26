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
// catalog ids 8 and 9, no registry) read like the others, with their
// workflow fields; older ids and JSON output without them read as nil.
func TestWorkflowRecordsDecode(t *testing.T) {
	c := newCodec(nil)
	wf := map[string]any{"string": "wf-1"}
	res, err := c.decodeResult(frameAs(t, "result-v3.avsc", 8, map[string]any{
		"task_id": "wf-1.0", "status": "SUCCEEDED", "output": []byte("out"),
		"error": nil, "agent": map[string]any{"string": "echo"}, "instance": "c1",
		"attempts": 1, "source": map[string]any{"topic": "swarmq-tasks",
			"partition": 2, "offset": int64(7)},
		"created_at": int64(1000), "started_at": int64(1001),
		"finished_at": int64(1002), "workflow_id": wf,
		"parent_id": map[string]any{"string": "wf-1.prev"}}))
	if err != nil {
		t.Fatalf("result id 8: %v", err)
	}
	if res.TaskID != "wf-1.0" || res.Status != "SUCCEEDED" || string(res.Output) != "out" ||
		res.Source.Partition != 2 || res.Source.Offset != 7 {
		t.Fatalf("result id 8 read as %+v", res)
	}
	if res.WorkflowID == nil || *res.WorkflowID != "wf-1" || res.ParentID == nil ||
		*res.ParentID != "wf-1.prev" {
		t.Fatalf("result id 8's workflow fields: %v, %v", res.WorkflowID, res.ParentID)
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
	if ev.WorkflowID == nil || *ev.WorkflowID != "wf-1" || ev.ParentID != nil {
		t.Fatalf("event id 9's workflow fields: %v, %v", ev.WorkflowID, ev.ParentID)
	}
	// Records of the older ids have none.
	old, err := c.decodeResult(frameAs(t, "result-v2.avsc", 6, map[string]any{
		"task_id": "t-1", "status": "SUCCEEDED", "output": []byte("out"),
		"error": nil, "agent": nil, "instance": "c1", "attempts": 1,
		"source": map[string]any{"topic": "swarmq-tasks", "partition": 0,
			"offset": int64(1)},
		"created_at": int64(1), "started_at": int64(2), "finished_at": int64(3)}))
	if err != nil || old.TaskID != "t-1" || old.WorkflowID != nil || old.ParentID != nil {
		t.Fatalf("result id 6 read as %+v (%v)", old, err)
	}
	oldEv, err := c.decodeEvent(frameAs(t, "event.avsc", 3, map[string]any{
		"event_id": "e0", "task_id": nil, "type": "x", "at": int64(1),
		"instance": "c1", "agent": nil, "detail": nil}))
	if err != nil || oldEv.EventID != "e0" || oldEv.WorkflowID != nil {
		t.Fatalf("event id 3 read as %+v (%v)", oldEv, err)
	}
	// swarmq's JSON output: the fields where set, absent elsewhere.
	js, err := c.decodeResult([]byte(`{"task_id":"wf-1.1","status":"SUCCEEDED",` +
		`"output_base64":"","error":null,"agent":null,"instance":"c1","attempts":1,` +
		`"source":{"topic":"t","partition":0,"offset":0},"created_at_ms":1,` +
		`"started_at_ms":2,"finished_at_ms":3,"workflow_id":"wf-1","parent_id":"wf-1.0"}`))
	if err != nil || js.WorkflowID == nil || *js.WorkflowID != "wf-1" || js.ParentID == nil ||
		*js.ParentID != "wf-1.0" {
		t.Fatalf("JSON result read as %+v (%v)", js, err)
	}
	jsEv, err := c.decodeEvent([]byte(`{"event_id":"e2","task_id":"t","type":"x",` +
		`"at_ms":1,"instance":"c1","agent":null,"detail":null}`))
	if err != nil || jsEv.WorkflowID != nil || jsEv.ParentID != nil {
		t.Fatalf("JSON event read as %+v (%v)", jsEv, err)
	}
	// An id of no result schema is still refused, naming it.
	if _, err := c.decodeResult(frameAs(t, "event-v2.avsc", 4, map[string]any{
		"event_id": "e1", "task_id": nil, "type": "x", "at": int64(1),
		"instance": "c1", "agent": nil, "detail": nil, "workflow_id": nil,
		"parent_id": nil})); err == nil {
		t.Fatal("result with schema id 4 read")
	}
}
