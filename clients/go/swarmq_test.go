// SPDX-License-Identifier: Apache-2.0

// Tests against a real swarmq-consumer (SWARMQ_BUILD: the CMake build
// folder) on the real Kafka broker of the ctest fixture (SQ_KAFKA_STATE,
// ops/kafka.sh), with the embedded catalog, with JSON output and with the
// Schema Registry of the registry fixture (SQ_TEST_REGISTRY_STATE). Each
// consumer gets topics and a group of its own. Expectations are computed
// here (crypto/sha256, the payloads), never read back from swarmq.
package swarmq

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// srcDir is the swarmq checkout: SWARMQ_SRC, else two folders up.
var srcDir = func() string {
	if d := os.Getenv("SWARMQ_SRC"); d != "" {
		return d
	}
	d, _ := filepath.Abs("../..")
	return d
}()

func buildDir() string {
	if d := os.Getenv("SWARMQ_BUILD"); d != "" {
		return d
	}
	return filepath.Join(srcDir, "build")
}

func kafkaBootstrap(t *testing.T) string {
	state := os.Getenv("SQ_KAFKA_STATE")
	if state == "" {
		state = filepath.Join(buildDir(), "tests", "kafka")
	}
	out, _ := exec.Command("bash", filepath.Join(srcDir, "ops", "kafka.sh"), "env",
		"--state-dir", state).Output()
	m := regexp.MustCompile(`(?m)^bootstrap\.servers=(.+)$`).FindSubmatch(out)
	if m == nil {
		t.Skip("no real Kafka broker (ctest fixture broker.start, or ops/kafka.sh start --state-dir DIR with SQ_KAFKA_STATE=DIR)")
	}
	return strings.TrimSpace(string(m[1]))
}

func registryURL(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(os.Getenv("SQ_TEST_REGISTRY_STATE"), "url"))
	m := regexp.MustCompile(`(?m)^schema\.registry\.url=(.+)$`).FindSubmatch(b)
	if err != nil || os.Getenv("SQ_TEST_REGISTRY_STATE") == "" || m == nil {
		t.Skip("no schema registry (ctest fixture registry.start, or ops/registry.sh start --state-dir DIR with SQ_TEST_REGISTRY_STATE=DIR)")
	}
	return strings.TrimSpace(string(m[1]))
}

// swarmqConsumer starts swarmq-consumer on bootstrap with topics of its
// own, waits until /readyz answers 200, and stops it (exit 0 required)
// when the test ends.
func swarmqConsumer(t *testing.T, bootstrap string, extra ...string) Topics {
	t.Helper()
	prefix := fmt.Sprintf("goclient-%s-%s", strings.ToLower(t.Name()), randomID()[:8])
	topics := Topics{Tasks: prefix + "-tasks", Critical: prefix + "-critical",
		Results: prefix + "-results", Events: prefix + "-events"}
	args := []string{"-b", bootstrap, "-g", prefix + "-group",
		"-X", "topic.tasks=" + topics.Tasks, "-X", "topic.critical=" + topics.Critical,
		"-X", "topic.results=" + topics.Results, "-X", "topic.events=" + topics.Events,
		"-X", "topic.retry=" + prefix + "-retry", "-X", "topic.dlt=" + prefix + "-dlt",
		"-X", "topic.control=" + prefix + "-control", "-X", "retry.max.attempts=1"}
	for _, x := range extra {
		args = append(args, "-X", x)
	}
	startConsumer(t, args)
	return topics
}

// embeddedSwarmq starts swarmq-consumer on its embedded broker (default
// topics) and returns the broker's bootstrap address.
func embeddedSwarmq(t *testing.T) string {
	t.Helper()
	return startConsumer(t, []string{"--embedded-broker"})
}

// startConsumer runs swarmq-consumer with args, waits until /readyz
// answers 200, and returns the bootstrap.servers it printed (if any).
func startConsumer(t *testing.T, args []string) string {
	t.Helper()
	args = append([]string{"--http-port", "auto", "-i", "go-" + t.Name(),
		"-X", "executor.threads=2"}, args...)
	cmd := exec.Command(filepath.Join(buildDir(), "consumer", "swarmq-consumer"), args...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SWARMQ_") { // the consumer reads SWARMQ_*
			env = append(env, e)
		}
	}
	cmd.Env = env
	logPath := filepath.Join(t.TempDir(), "consumer.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting swarmq-consumer (build it first: bash ops/build.sh build): %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("swarmq-consumer did not exit 0 after SIGTERM: %v", err)
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("swarmq-consumer did not stop within 60 s")
		}
		logf.Close()
	})
	httpURL, bootstrap := "", ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "bootstrap.servers="); ok {
			bootstrap = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "http.url="); ok {
			httpURL = v
		}
		embedded := args[len(args)-1] == "--embedded-broker"
		if httpURL != "" && (bootstrap != "" || !embedded) {
			break
		}
	}
	go func() { // keep draining stdout
		for sc.Scan() {
		}
	}()
	if httpURL == "" {
		t.Fatal("swarmq-consumer printed no http.url")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(httpURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return bootstrap
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("swarmq-consumer not ready in 60 s; log:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctx60(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rawValue reads one record's value as it is on the wire.
func rawValue(t *testing.T, bootstrap, topic string, partition int32, offset int64) []byte {
	cl, err := kgo.NewClient(kafkaOpts(Config{Brokers: []string{bootstrap}}, kgo.ConsumePartitions(
		map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctx60(t)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record at %s[%d]@%d", topic, partition, offset)
		}
		var got []byte
		fs.EachRecord(func(r *kgo.Record) {
			if got == nil && r.Offset == offset {
				got = r.Value
			}
		})
		if got != nil {
			return got
		}
	}
}

func TestSubmitAndWait(t *testing.T) {
	bootstrap := kafkaBootstrap(t)
	topics := swarmqConsumer(t, bootstrap)
	c := newClient(t, Config{Brokers: []string{bootstrap}, Topics: topics})
	ctx := ctx60(t)

	res, err := c.Run(ctx, Task{Type: "sha256", Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != Succeeded || string(res.Output) != hexSHA([]byte("hello")) || res.Error != nil {
		t.Fatalf("sha256 result: %+v", res)
	}
	if res.Source.Topic != topics.Tasks || res.StartedAt.Before(res.CreatedAt) || res.FinishedAt.Before(res.StartedAt) {
		t.Fatalf("result coordinates or times: %+v", res)
	}

	tasks := make([]Task, 20)
	for i := range tasks {
		tasks[i] = Task{Type: "echo", Payload: []byte(fmt.Sprintf("go %d", i)), Priority: []Priority{Low, Normal, High}[i%3]}
	}
	ids, err := c.SubmitMany(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		r, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != Succeeded || string(r.Output) != fmt.Sprintf("go %d", i) {
			t.Fatalf("task %s: %+v", id, r)
		}
	}

	bad, err := c.Run(ctx, Task{Type: "fail", Payload: []byte("boom"), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Status != DeadLettered || bad.Error == nil || *bad.Error == "" {
		t.Fatalf("failing task: %+v", bad)
	}

	evs, err := c.Events(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if len(types) < 3 || types[0] != "received" || types[1] != "started" || types[len(types)-1] != "succeeded" {
		t.Fatalf("events of %s: %v", ids[0], types)
	}

	if _, err := c.Submit(ctx, Task{Type: ""}); err == nil || !strings.Contains(err.Error(), "Type is empty") {
		t.Fatalf("an empty type was not refused: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(short, "no-such-task"); err == nil || !strings.Contains(err.Error(), "no-such-task") {
		t.Fatalf("Wait of an unknown id: %v", err)
	}
}

func TestJSONOutput(t *testing.T) {
	bootstrap := kafkaBootstrap(t)
	topics := swarmqConsumer(t, bootstrap, "output.format=json")
	c := newClient(t, Config{Brokers: []string{bootstrap}, Topics: topics})
	ctx := ctx60(t)
	res, err := c.Run(ctx, Task{Type: "echo", Payload: []byte("as json")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != Succeeded || string(res.Output) != "as json" {
		t.Fatalf("result: %+v", res)
	}
	// The terminal event is written beside the result, not before it:
	// read the events until it is there (Events reads what is written).
	var evs []*Event
	for {
		evs, err = c.Events(ctx, res.TaskID)
		if err != nil {
			t.Fatalf("events: %v %v", evs, err)
		}
		if len(evs) > 0 && evs[len(evs)-1].Type == "succeeded" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no succeeded event for %s: %v", res.TaskID, evs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestRegistry(t *testing.T) {
	bootstrap := kafkaBootstrap(t)
	reg := registryURL(t)
	topics := swarmqConsumer(t, bootstrap, "schema.registry.url="+reg)
	c := newClient(t, Config{Brokers: []string{bootstrap}, Topics: topics, RegistryURL: reg})
	ctx := ctx60(t)
	res, err := c.Run(ctx, Task{Type: "sha256", Payload: []byte("registry")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != Succeeded || string(res.Output) != hexSHA([]byte("registry")) {
		t.Fatalf("result: %+v", res)
	}
	// The task was framed with the registry's id of task-v2.avsc under
	// <tasks topic>-value (the registry's lookup, POST /subjects/{subject}).
	text, _ := os.ReadFile(filepath.Join(srcDir, "schemas", "task-v2.avsc"))
	body, _ := json.Marshal(map[string]string{"schema": string(text)})
	resp, err := http.Post(reg+"/subjects/"+topics.Tasks+"-value",
		"application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ ID uint32 }
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	value := rawValue(t, bootstrap, res.Source.Topic, res.Source.Partition, res.Source.Offset)
	if value[0] != 0 || binary.BigEndian.Uint32(value[1:5]) != got.ID || got.ID == 0 {
		t.Fatalf("task framed with id %d, the registry has task-v2.avsc as %d",
			binary.BigEndian.Uint32(value[1:5]), got.ID)
	}
}

func TestShippedSchemasAreTheRepositorys(t *testing.T) {
	entries, _ := schemaFiles.ReadDir("schemas")
	if len(entries) == 0 {
		t.Fatal("no embedded schemas")
	}
	for _, e := range entries {
		mine, _ := schemaFiles.ReadFile("schemas/" + e.Name())
		repo, err := os.ReadFile(filepath.Join(srcDir, "schemas", e.Name()))
		if err != nil || !bytes.Equal(mine, repo) {
			t.Errorf("clients/go/schemas/%s differs from schemas/%s: copy it", e.Name(), e.Name())
		}
	}
}
