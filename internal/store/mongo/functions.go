package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// functionDoc is a function as stored. Maps become arrays: their keys
// (file paths) may contain dots.
type functionDoc struct {
	ID           string    `bson:"_id"`
	Name         string    `bson:"name"`
	Runtime      string    `bson:"runtime"`
	Handler      string    `bson:"handler"`
	Files        []fileDoc `bson:"files"`
	Env          []envDoc  `bson:"env"`
	TimeoutMs    int       `bson:"timeoutMs"`
	MemoryMB     int       `bson:"memoryMb"`
	Driver       string    `bson:"driver"`
	MaxInstances int       `bson:"maxInstances"`
	Network      bool      `bson:"network"`
	MinInstances int       `bson:"minInstances,omitempty"`
	Concurrency  int       `bson:"concurrency,omitempty"` // absent in documents older than the field: 1
	KeepAliveMs  int       `bson:"keepAliveMs,omitempty"`
	Version      int       `bson:"version"`
	// Code describes the stored code, its layers and build; nil for a
	// function whose files are inline.
	Code *codeDoc `bson:"code,omitempty"`
	// URL is the function's URL settings; absent for none.
	URL *urlDoc `bson:"url,omitempty"`
	// Async is the function's async settings, Schedules its schedules;
	// absent for none.
	Async     *asyncDoc     `bson:"async,omitempty"`
	Schedules []scheduleDoc `bson:"schedules,omitempty"`
	// TestEvents are the function's saved test events, each event as its
	// JSON text (BSON has no lossless home for every JSON number); absent
	// for none.
	TestEvents []testEventDoc `bson:"testEvents,omitempty"`
	CreatedAt  time.Time      `bson:"createdAt"`
	UpdatedAt  time.Time      `bson:"updatedAt"`
}

type testEventDoc struct {
	Name  string `bson:"name"`
	Event string `bson:"event"`
}

func toTestEventDocs(evs []fn.TestEvent) []testEventDoc {
	if len(evs) == 0 {
		return nil
	}
	out := make([]testEventDoc, len(evs))
	for i, e := range evs {
		out[i] = testEventDoc{Name: e.Name, Event: string(e.Event)}
	}
	return out
}

func testEvents(ds []testEventDoc) []fn.TestEvent {
	if len(ds) == 0 {
		return nil
	}
	out := make([]fn.TestEvent, len(ds))
	for i, d := range ds {
		out[i] = fn.TestEvent{Name: d.Name, Event: json.RawMessage(d.Event)}
	}
	return out
}

type fileDoc struct {
	Path    string `bson:"path"`
	Content string `bson:"content"`
	// Binary holds a file that is not valid UTF-8 (BSON strings are), and
	// then Content is empty.
	Binary []byte `bson:"binary,omitempty"`
}

type codeDoc struct {
	Info   *fn.CodeInfo      `bson:"info,omitempty"`
	Layers []string          `bson:"layers,omitempty"`
	Build  *fn.BuildSettings `bson:"build,omitempty"`
	Status *fn.BuildStatus   `bson:"status,omitempty"`
}

// urlDoc is fn.URLConfig as stored, its names spelled out.
type urlDoc struct {
	Enabled bool     `bson:"enabled"`
	Auth    string   `bson:"auth,omitempty"`
	CORS    *corsDoc `bson:"cors,omitempty"`
}

type corsDoc struct {
	AllowOrigins     []string `bson:"allowOrigins,omitempty"`
	AllowMethods     []string `bson:"allowMethods,omitempty"`
	AllowHeaders     []string `bson:"allowHeaders,omitempty"`
	ExposeHeaders    []string `bson:"exposeHeaders,omitempty"`
	MaxAge           int      `bson:"maxAge,omitempty"`
	AllowCredentials bool     `bson:"allowCredentials,omitempty"`
}

func toURLDoc(u *fn.URLConfig) *urlDoc {
	if u == nil {
		return nil
	}
	d := &urlDoc{Enabled: u.Enabled, Auth: u.Auth}
	if c := u.CORS; c != nil {
		d.CORS = &corsDoc{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, MaxAge: c.MaxAge, AllowCredentials: c.AllowCredentials}
	}
	return d
}

func (d *urlDoc) config() *fn.URLConfig {
	if d == nil {
		return nil
	}
	u := &fn.URLConfig{Enabled: d.Enabled, Auth: d.Auth}
	if c := d.CORS; c != nil {
		u.CORS = &fn.CORS{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, MaxAge: c.MaxAge, AllowCredentials: c.AllowCredentials}
	}
	return u
}

// asyncDoc is fn.AsyncConfig as stored.
type asyncDoc struct {
	MaxRetries         *int     `bson:"maxRetries,omitempty"`
	MaxEventAgeSeconds int      `bson:"maxEventAgeSeconds,omitempty"`
	RetryBackoff       string   `bson:"retryBackoff,omitempty"`
	OnSuccess          *destDoc `bson:"onSuccess,omitempty"`
	OnFailure          *destDoc `bson:"onFailure,omitempty"`
}

type destDoc struct {
	Function string `bson:"function,omitempty"`
	URL      string `bson:"url,omitempty"`
}

// scheduleDoc is fn.Schedule as stored, without NextRun (shown, never
// stored). Event is JSON text, as an execution's is.
type scheduleDoc struct {
	Name      string  `bson:"name"`
	Cron      string  `bson:"cron,omitempty"`
	Rate      string  `bson:"rate,omitempty"`
	Timezone  string  `bson:"timezone,omitempty"`
	Event     *string `bson:"event,omitempty"`
	Enabled   *bool   `bson:"enabled,omitempty"`
	CatchUp   string  `bson:"catchUp,omitempty"`
	Qualifier string  `bson:"qualifier,omitempty"`
}

func toAsyncDoc(a *fn.AsyncConfig) *asyncDoc {
	if a == nil {
		return nil
	}
	d := &asyncDoc{MaxEventAgeSeconds: a.MaxEventAgeSeconds, RetryBackoff: a.RetryBackoff,
		OnSuccess: toDestDoc(a.OnSuccess), OnFailure: toDestDoc(a.OnFailure)}
	if a.MaxRetries != nil {
		n := *a.MaxRetries
		d.MaxRetries = &n
	}
	return d
}

func toDestDoc(d *fn.Destination) *destDoc {
	if d == nil {
		return nil
	}
	return &destDoc{Function: d.Function, URL: d.URL}
}

func (d *asyncDoc) config() *fn.AsyncConfig {
	if d == nil {
		return nil
	}
	a := &fn.AsyncConfig{MaxRetries: d.MaxRetries, MaxEventAgeSeconds: d.MaxEventAgeSeconds,
		RetryBackoff: d.RetryBackoff, OnSuccess: d.OnSuccess.destination(), OnFailure: d.OnFailure.destination()}
	return a
}

func (d *destDoc) destination() *fn.Destination {
	if d == nil {
		return nil
	}
	return &fn.Destination{Function: d.Function, URL: d.URL}
}

func toScheduleDocs(ss []fn.Schedule) []scheduleDoc {
	if ss == nil {
		return nil
	}
	ds := make([]scheduleDoc, len(ss))
	for i, s := range ss {
		ds[i] = scheduleDoc{Name: s.Name, Cron: s.Cron, Rate: s.Rate, Timezone: s.Timezone,
			Event: jsonText(s.Event), Enabled: s.Enabled, CatchUp: string(s.CatchUp), Qualifier: s.Qualifier}
	}
	return ds
}

func schedules(ds []scheduleDoc) []fn.Schedule {
	if ds == nil {
		return nil
	}
	ss := make([]fn.Schedule, len(ds))
	for i, d := range ds {
		ss[i] = fn.Schedule{Name: d.Name, Cron: d.Cron, Rate: d.Rate, Timezone: d.Timezone,
			Event: rawJSON(d.Event), Enabled: d.Enabled, CatchUp: fn.CatchUp(d.CatchUp), Qualifier: d.Qualifier}
	}
	return ss
}

// envDoc is a variable: a plain one's value, or the name of the secret
// it references (fn.Function.SecretEnv; never a value). Documents older
// than Secret have plain variables only.
type envDoc struct {
	Name   string `bson:"name"`
	Value  string `bson:"value"`
	Secret string `bson:"secret,omitempty"`
}

func toFunctionDoc(f *fn.Function) *functionDoc {
	d := &functionDoc{
		ID: f.ID, Name: f.Name, Runtime: f.Runtime, Handler: f.Handler,
		Files: make([]fileDoc, 0, len(f.Files)), Env: make([]envDoc, 0, len(f.Env)),
		TimeoutMs: f.Timeout, MemoryMB: f.Memory, Driver: f.Driver, MaxInstances: f.MaxInstances,
		Network: f.Network, Version: f.Revision, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt,
		MinInstances: f.MinInstances, Concurrency: f.Concurrency, KeepAliveMs: f.KeepAlive,
		URL: toURLDoc(f.URL), Async: toAsyncDoc(f.Async), Schedules: toScheduleDocs(f.Schedules),
		TestEvents: toTestEventDocs(f.TestEvents),
	}
	for _, p := range sortedKeys(f.Files) {
		c := f.Files[p]
		if utf8.ValidString(c) {
			d.Files = append(d.Files, fileDoc{Path: p, Content: c})
		} else {
			d.Files = append(d.Files, fileDoc{Path: p, Binary: []byte(c)})
		}
	}
	if f.CodeInfo != nil || len(f.Layers) > 0 || f.Build != nil || f.BuildStatus != nil {
		d.Code = &codeDoc{Info: f.CodeInfo, Layers: f.Layers, Build: f.Build, Status: f.BuildStatus}
	}
	for _, k := range sortedKeys(f.Env) {
		d.Env = append(d.Env, envDoc{Name: k, Value: f.Env[k]})
	}
	for _, k := range sortedKeys(f.SecretEnv) {
		d.Env = append(d.Env, envDoc{Name: k, Secret: f.SecretEnv[k]})
	}
	return d
}

func (d *functionDoc) function() *fn.Function {
	f := &fn.Function{
		ID: d.ID, Name: d.Name, Runtime: d.Runtime, Handler: d.Handler,
		Files: make(map[string]string, len(d.Files)), Env: make(map[string]string, len(d.Env)),
		Timeout: d.TimeoutMs, Memory: d.MemoryMB, Driver: d.Driver, MaxInstances: d.MaxInstances,
		Network: d.Network, Revision: d.Version, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		MinInstances: d.MinInstances, Concurrency: max(d.Concurrency, 1), KeepAlive: d.KeepAliveMs,
		URL: d.URL.config(), Async: d.Async.config(), Schedules: schedules(d.Schedules),
		TestEvents: testEvents(d.TestEvents),
	}
	for _, fd := range d.Files {
		if fd.Binary != nil {
			f.Files[fd.Path] = string(fd.Binary)
		} else {
			f.Files[fd.Path] = fd.Content
		}
	}
	if len(f.Files) == 0 {
		f.Files = nil
	}
	if c := d.Code; c != nil {
		f.CodeInfo, f.Layers, f.Build, f.BuildStatus = c.Info, c.Layers, c.Build, c.Status
	}
	for _, e := range d.Env {
		if e.Secret != "" {
			if f.SecretEnv == nil {
				f.SecretEnv = map[string]string{}
			}
			f.SecretEnv[e.Name] = e.Secret
			continue
		}
		f.Env[e.Name] = e.Value
	}
	return f
}

func sortedKeys[M ~map[string]string](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CreateFunction inserts f; a taken name (or id) is fn.ErrConflict.
func (s *Store) CreateFunction(ctx context.Context, f *fn.Function) error {
	if f == nil || f.ID == "" {
		return fmt.Errorf("mongo: create function: %w", fn.Invalid("id", "is required"))
	}
	_, err := s.functions.InsertOne(ctx, toFunctionDoc(f))
	return s.wrapErr("create function", err)
}

// GetFunction finds a function by id, or else by name: one query for both,
// and a name that looks like another function's id loses to the id.
func (s *Store) GetFunction(ctx context.Context, idOrName string) (*fn.Function, error) {
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "_id", Value: idOrName}},
		bson.D{{Key: "name", Value: idOrName}},
	}}}
	cur, err := s.functions.Find(ctx, filter, options.Find().SetLimit(2))
	if err != nil {
		return nil, s.wrapErr("get function", err)
	}
	var docs []functionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.wrapErr("get function", err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("mongo: get function %q: %w", idOrName, fn.ErrNotFound)
	}
	for i := range docs {
		if docs[i].ID == idOrName {
			return docs[i].function(), nil
		}
	}
	return docs[0].function(), nil
}

// ListFunctions returns every function, ordered by name.
func (s *Store) ListFunctions(ctx context.Context) ([]*fn.Function, error) {
	cur, err := s.functions.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "name", Value: 1}}))
	if err != nil {
		return nil, s.wrapErr("list functions", err)
	}
	var docs []functionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.wrapErr("list functions", err)
	}
	fs := make([]*fn.Function, len(docs))
	for i := range docs {
		fs[i] = docs[i].function()
	}
	return fs, nil
}

// UpdateFunction replaces the function with f.ID if its stored version is
// still prevVersion. The replace is conditional on the version, which on
// MongoDB alone makes one of two concurrent updates of a version win; an
// update lock (see lock.go) first makes sure of it on servers whose
// conditional replace is not atomic, such as FerretDB v1.
func (s *Store) UpdateFunction(ctx context.Context, f *fn.Function, prevVersion int) error {
	if f == nil || f.ID == "" {
		return fmt.Errorf("mongo: update function: %w", fn.Invalid("id", "is required"))
	}
	if f.Revision != prevVersion {
		unlock, err := s.lockVersion(ctx, f.ID, f.Revision, prevVersion)
		if err != nil {
			return err
		}
		defer unlock()
	}
	res, err := s.functions.ReplaceOne(ctx, bson.D{{Key: "_id", Value: f.ID}, {Key: "version", Value: prevVersion}}, toFunctionDoc(f))
	if err != nil {
		return s.wrapErr("update function", err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	return s.staleUpdate(ctx, f.ID, prevVersion)
}

// staleUpdate is the error of an update from prevVersion that found no
// such version: fn.ErrNotFound, or fn.ErrConflict when the function exists.
func (s *Store) staleUpdate(ctx context.Context, id string, prevVersion int) error {
	err := s.functions.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: update function %q: %w", id, fn.ErrNotFound)
	case err != nil:
		return s.wrapErr("update function", err)
	}
	return fmt.Errorf("mongo: update function %q: version is no longer %d: %w", id, prevVersion, fn.ErrConflict)
}

// DeleteFunction removes a function, then its executions, versions and
// aliases. Should a later step fail, what is left behind belongs to an
// id no function has any more: nothing shows it, and deleting again is
// fn.ErrNotFound.
func (s *Store) DeleteFunction(ctx context.Context, id string) error {
	res, err := s.functions.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return s.wrapErr("delete function", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: delete function %q: %w", id, fn.ErrNotFound)
	}
	if _, err := s.executions.DeleteMany(ctx, bson.D{{Key: "functionId", Value: id}}); err != nil {
		return s.wrapErr("delete function executions", err)
	}
	if _, err := s.versions.DeleteMany(ctx, bson.D{{Key: "functionId", Value: id}}); err != nil {
		return s.wrapErr("delete function versions", err)
	}
	if _, err := s.aliases.DeleteMany(ctx, bson.D{{Key: "functionId", Value: id}}); err != nil {
		return s.wrapErr("delete function aliases", err)
	}
	return nil
}
