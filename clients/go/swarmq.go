// SPDX-License-Identifier: Apache-2.0

// Package swarmq submits tasks to swarmq and reads their results, on
// franz-go (a pure-Go Kafka client), as docs/wire.md of the swarmq
// repository describes.
//
//	c, err := swarmq.NewClient(swarmq.Config{Brokers: []string{"127.0.0.1:9092"}})
//	res, err := c.Run(ctx, swarmq.Task{Type: "sha256", Payload: []byte("hello")})
//
// DESIGN: a Client holds one franz-go client for producing tasks and, from
// the first Submit or Wait on, one watcher goroutine with a second client
// that reads every partition of the results topic (assigned directly, no
// group, nothing committed). The watcher fixes its start offsets, each
// partition's end, before the first task is produced, so the result of a
// task this client submitted is never missed; a results topic that does
// not exist yet is read from its beginning once it appears. Each result
// completes the waiters of its task id and is kept (the last
// Config.ResultsKept) so Wait after it arrived still finds it. A record
// that does not decode is skipped (see Config.OnDecodeError).
package swarmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Priority is a task's scheduling priority (task.avsc).
type Priority string

// The priorities; CRITICAL tasks go to the fast-lane topic.
const (
	Low      Priority = "LOW"
	Normal   Priority = "NORMAL"
	High     Priority = "HIGH"
	Critical Priority = "CRITICAL"
)

// Status is how a task ended (result-v2.avsc).
type Status string

// The statuses (docs/wire.md, "Statuses").
const (
	Succeeded    Status = "SUCCEEDED"
	Failed       Status = "FAILED"
	TimedOut     Status = "TIMED_OUT"
	DeadLettered Status = "DEAD_LETTERED"
	Cancelled    Status = "CANCELLED"
)

// Task is a task to submit. Only Type is required: ID defaults to a random
// id, Priority to NORMAL, CreatedAt to now, MaxAttempts to 3.
type Task struct {
	ID           string
	Type         string
	Priority     Priority
	Capabilities []string
	Payload      []byte
	Key          *string // ordering/affinity key; the record key is Key, else ID
	CreatedAt    time.Time
	Timeout      time.Duration // per attempt; 0 = none
	MaxAttempts  int
	Headers      map[string]string
	NotBefore    time.Time // zero: run as soon as read
}

// Source is where the task record was (a Result's source).
type Source struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Result is the outcome of one task (result-v3.avsc).
type Result struct {
	TaskID     string
	Status     Status
	Output     []byte
	Error      *string // why it did not succeed; nil on success
	Agent      *string
	Instance   string
	Attempts   int
	Source     Source
	CreatedAt  time.Time
	StartedAt  time.Time // zero when it never started
	FinishedAt time.Time
	// WorkflowID is the task's workflow (docs/workflows.md), and
	// ParentID the step before it there (a chain's); nil outside a
	// workflow. A workflow's own result has WorkflowID = TaskID.
	WorkflowID *string
	ParentID   *string
}

// Event is one lifecycle event (event-v2.avsc); TaskID is nil for instance
// events.
type Event struct {
	EventID  string
	TaskID   *string
	Type     string
	At       time.Time
	Instance string
	Agent    *string
	Detail   *string
	// WorkflowID and ParentID are the task's, as in Result.
	WorkflowID *string
	ParentID   *string
}

// Topics are the topic names; they must be the consumer's (topic.* keys).
type Topics struct {
	Tasks, Critical, Results, Events string
}

// DefaultTopics are swarmq's default topic names.
func DefaultTopics() Topics {
	return Topics{Tasks: "swarmq-tasks", Critical: "swarmq-tasks-critical",
		Results: "swarmq-results", Events: "swarmq-events"}
}

// Config configures a Client.
type Config struct {
	// Brokers are the bootstrap servers (swarmq-consumer --embedded-broker
	// prints one as bootstrap.servers=).
	Brokers []string
	// Topics; zero fields take DefaultTopics' names.
	Topics Topics
	// RegistryURL is the consumer's schema.registry.url (Confluent REST
	// API, e.g. Apicurio's .../apis/ccompat/v7); empty: the embedded
	// catalog's ids.
	RegistryURL string
	// RegistryBasicAuth is "user:password" for the registry, if needed.
	RegistryBasicAuth string
	// KafkaOpts are further franz-go options (TLS, SASL, ...) for every
	// Kafka client this Client makes.
	KafkaOpts []kgo.Opt
	// ResultsKept is how many recent results Wait still finds after they
	// arrived (default 100000).
	ResultsKept int
	// OnDecodeError, if set, is told about result records that do not
	// decode (they are skipped).
	OnDecodeError func(err error)
}

// Client submits tasks and waits for their results. Safe for concurrent
// use; Close it when done.
type Client struct {
	cfg   Config
	codec *codec
	prod  *kgo.Client

	mu      sync.Mutex
	waiters map[string][]chan *Result
	seen    map[string]*Result
	order   []string
	watch   *kgo.Client
	watchWG sync.WaitGroup
	cancel  context.CancelFunc
	closed  bool
}

// NewClient makes a Client; it connects lazily.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("swarmq: Config.Brokers is empty")
	}
	def := DefaultTopics()
	for _, f := range []struct {
		p *string
		d string
	}{
		{&cfg.Topics.Tasks, def.Tasks}, {&cfg.Topics.Critical, def.Critical},
		{&cfg.Topics.Results, def.Results}, {&cfg.Topics.Events, def.Events}} {
		if *f.p == "" {
			*f.p = f.d
		}
	}
	if cfg.ResultsKept <= 0 {
		cfg.ResultsKept = 100000
	}
	var reg *registry
	if cfg.RegistryURL != "" {
		reg = &registry{url: trimSlash(cfg.RegistryURL), auth: cfg.RegistryBasicAuth,
			client: &http.Client{Timeout: 10 * time.Second}, byID: map[int]avroSchema{}}
	}
	prod, err := kgo.NewClient(kafkaOpts(cfg, kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("swarmq: %w", err)
	}
	return &Client{cfg: cfg, codec: newCodec(reg), prod: prod,
		waiters: map[string][]chan *Result{}, seen: map[string]*Result{}}, nil
}

// kafkaOpts are the franz-go options of every Kafka client a Client makes:
// the brokers, two request versions capped, extra, then Config.KafkaOpts.
// The embedded broker (librdkafka 2.0.2's mock cluster, swarmq-consumer
// --embedded-broker) encodes ApiVersions v3 and ListOffsets v4 and later
// in forms franz-go cannot read (a short ApiVersions response; end offsets
// of partitions that do not exist). ApiVersions v2 negotiates the same
// versions for every other API (v3 only adds the client's name), and
// ListOffsets v3 has all this client asks (latest offsets, isolation
// level); real Kafka, 4.x included, serves both.
func kafkaOpts(cfg Config, extra ...kgo.Opt) []kgo.Opt {
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(18, 2) // ApiVersions
	versions.SetMaxKeyVersion(2, 3)  // ListOffsets
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...),
		kgo.MaxVersions(versions)}, extra...)
	return append(opts, cfg.KafkaOpts...)
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validate fills defaults and refuses what swarmq would refuse.
func (t *Task) validate() error {
	if t.ID == "" {
		t.ID = randomID()
	}
	if t.Type == "" {
		return fmt.Errorf("swarmq: task %s: Type is empty", t.ID)
	}
	switch t.Priority {
	case "":
		t.Priority = Normal
	case Low, Normal, High, Critical:
	default:
		return fmt.Errorf("swarmq: task %s: priority %q is not LOW, NORMAL, HIGH or CRITICAL", t.ID, t.Priority)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = 3
	}
	if t.MaxAttempts < 0 || t.Timeout < 0 {
		return fmt.Errorf("swarmq: task %s: MaxAttempts and Timeout must not be negative", t.ID)
	}
	return nil
}

// Submit writes a task and returns its id once Kafka acknowledged it.
func (c *Client) Submit(ctx context.Context, task Task) (string, error) {
	ids, err := c.SubmitMany(ctx, []Task{task})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// SubmitMany writes tasks in one batch and returns their ids, in order,
// once all are acknowledged; the error names the first that failed.
func (c *Client) SubmitMany(ctx context.Context, tasks []Task) ([]string, error) {
	if err := c.startWatch(ctx); err != nil {
		return nil, err
	}
	recs := make([]*kgo.Record, len(tasks))
	for i := range tasks {
		t := &tasks[i]
		if err := t.validate(); err != nil {
			return nil, err
		}
		topic := c.cfg.Topics.Tasks
		if t.Priority == Critical {
			topic = c.cfg.Topics.Critical
		}
		value, err := c.codec.encodeTask(t, topic)
		if err != nil {
			return nil, fmt.Errorf("swarmq: task %s: %w", t.ID, err)
		}
		key := t.ID
		if t.Key != nil {
			key = *t.Key
		}
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	}
	if err := c.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("swarmq: not every task was delivered: %w", err)
	}
	ids := make([]string, len(tasks))
	for i := range tasks {
		ids[i] = tasks[i].ID
	}
	return ids, nil
}

// Wait blocks until the task's result, or ctx ends.
func (c *Client) Wait(ctx context.Context, taskID string) (*Result, error) {
	if err := c.startWatch(ctx); err != nil {
		return nil, err
	}
	ch := make(chan *Result, 1)
	c.mu.Lock()
	if r, ok := c.seen[taskID]; ok {
		c.mu.Unlock()
		return r, nil
	}
	c.waiters[taskID] = append(c.waiters[taskID], ch)
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		ws := c.waiters[taskID]
		for i, w := range ws {
			if w == ch {
				c.waiters[taskID] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(c.waiters[taskID]) == 0 {
			delete(c.waiters, taskID)
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("swarmq: no result for task %s: %w", taskID, ctx.Err())
	}
}

// Run submits a task and waits for its result.
func (c *Client) Run(ctx context.Context, task Task) (*Result, error) {
	id, err := c.Submit(ctx, task)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, id)
}

// startWatch starts the results watcher once, with its start offsets
// fixed before it returns.
func (c *Client) startWatch(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("swarmq: client closed")
	}
	if c.watch != nil {
		return nil
	}
	topic := c.cfg.Topics.Results
	ends, err := c.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	var opts []kgo.Opt
	if ends == nil {
		// No results topic yet: read it from its beginning once it exists.
		opts = append(opts, kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	} else {
		parts := map[int32]kgo.Offset{}
		for p, end := range ends {
			parts[p] = kgo.NewOffset().At(end)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	}
	watch, err := kgo.NewClient(kafkaOpts(c.cfg, opts...)...)
	if err != nil {
		return fmt.Errorf("swarmq: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	c.watch, c.cancel = watch, cancel
	c.watchWG.Add(1)
	go c.runWatch(wctx, watch)
	return nil
}

// endOffsets returns each partition's end offset of topic, or nil when the
// topic does not exist. A topic that our own metadata request just
// auto-created may answer errors for a moment (the embedded broker answers
// UNKNOWN_SERVER_ERROR): asked again for up to 10 s.
func (c *Client) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	adm := kadm.NewClient(c.prod)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, nil
		}
		if err == nil {
			parts := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				parts[o.Partition] = o.Offset
			})
			if len(parts) == 0 {
				return nil, nil
			}
			return parts, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("swarmq: end offsets of %s: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Client) runWatch(ctx context.Context, watch *kgo.Client) {
	defer c.watchWG.Done()
	for {
		fetches := watch.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			r, err := c.codec.decodeResult(rec.Value)
			if err != nil {
				if c.cfg.OnDecodeError != nil {
					c.cfg.OnDecodeError(fmt.Errorf("%s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err))
				}
				return
			}
			c.deliver(r)
		})
	}
}

func (c *Client) deliver(r *Result) {
	c.mu.Lock()
	if _, ok := c.seen[r.TaskID]; !ok {
		c.seen[r.TaskID] = r
		c.order = append(c.order, r.TaskID)
		if len(c.order) > c.cfg.ResultsKept {
			delete(c.seen, c.order[0])
			c.order = c.order[1:]
		}
	}
	ws := c.waiters[r.TaskID]
	delete(c.waiters, r.TaskID)
	c.mu.Unlock()
	for _, w := range ws {
		w <- r
	}
}

// Events reads the events topic from the beginning to its current end and
// returns those of one task id (empty: all), in the order written.
func (c *Client) Events(ctx context.Context, taskID string) ([]*Event, error) {
	topic := c.cfg.Topics.Events
	ends, err := c.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	left := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	for p, end := range ends {
		if end > 0 {
			left[p] = end
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	var out []*Event
	if len(parts) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kafkaOpts(c.cfg,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))...)
	if err != nil {
		return nil, fmt.Errorf("swarmq: %w", err)
	}
	defer cl.Close()
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		var ferr error
		fetches.EachRecord(func(rec *kgo.Record) {
			end, ok := left[rec.Partition]
			if !ok || rec.Offset >= end || ferr != nil {
				return
			}
			if rec.Offset+1 >= end {
				delete(left, rec.Partition)
			}
			ev, err := c.codec.decodeEvent(rec.Value)
			if err != nil {
				ferr = fmt.Errorf("swarmq: %s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
				return
			}
			if taskID == "" || (ev.TaskID != nil && *ev.TaskID == taskID) {
				out = append(out, ev)
			}
		})
		if ferr != nil {
			return out, ferr
		}
	}
	return out, nil
}

// Close stops the watcher and closes the Kafka clients; waiters still
// blocked return when their contexts end.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	cancel, watch := c.cancel, c.watch
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		c.watchWG.Wait()
		watch.Close()
	}
	c.prod.Close()
}
