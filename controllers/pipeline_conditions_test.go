package controllers

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/rollup"
)

func TestPipelineConditions(t *testing.T) {
	rollupWith := func(hash string, phase v1alpha1.BackfillPhase) *v1alpha1.RollupStatus {
		return &v1alpha1.RollupStatus{Table: "t_" + hash, View: "t_" + hash + "_mv", SpecHash: hash,
			Backfill: v1alpha1.BackfillStatus{Phase: phase, TotalChunks: 4, CompletedChunks: 1, LastChunk: "2024-01", Events: 7}}
	}
	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message string
	}
	for _, tc := range []struct {
		name                   string
		active, pending        *v1alpha1.RollupStatus
		obs                    pipelineObservation
		table, backfill, ready want
	}{
		{
			name:     "tenant not ready",
			obs:      pipelineObservation{hash: "h1", tenantProblem: "the database of tenant acme is not ready: x"},
			table:    want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, "tenant acme"},
			backfill: want{metav1.ConditionFalse, v1alpha1.ReasonInProgress, ""},
			ready:    want{metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, "not ready"},
		},
		{
			name:     "invalid spec",
			obs:      pipelineObservation{hash: "h1", err: &rollup.InvalidSpecError{Reason: "no metrics"}},
			table:    want{metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "no metrics"},
			backfill: want{metav1.ConditionFalse, v1alpha1.ReasonInProgress, ""},
			ready:    want{metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "no metrics"},
		},
		{
			name:     "waiting for the processor",
			pending:  rollupWith("h1", v1alpha1.BackfillWaitingForProcessor),
			obs:      pipelineObservation{hash: "h1", tableReady: true, lag: &kafka.Progress{Lag: 12, Behind: []int32{0, 2}}},
			table:    want{metav1.ConditionTrue, v1alpha1.ReasonTableCreated, "t_h1"},
			backfill: want{metav1.ConditionFalse, v1alpha1.ReasonWaitingForProcessor, "12 records behind in partitions [0 2]"},
			ready:    want{metav1.ConditionFalse, v1alpha1.ReasonInProgress, "being built"},
		},
		{
			name:     "backfilling",
			pending:  rollupWith("h1", v1alpha1.BackfillRunning),
			obs:      pipelineObservation{hash: "h1", tableReady: true},
			table:    want{metav1.ConditionTrue, v1alpha1.ReasonTableCreated, ""},
			backfill: want{metav1.ConditionFalse, v1alpha1.ReasonBackfilling, "1 of 4 chunks done, 7 events aggregated, last chunk 2024-01"},
			ready:    want{metav1.ConditionFalse, v1alpha1.ReasonInProgress, ""},
		},
		{
			name:     "backfill fails on ClickHouse",
			pending:  rollupWith("h1", v1alpha1.BackfillRunning),
			obs:      pipelineObservation{hash: "h1", tableReady: true, err: fromBackend(backendClickHouse, errors.New("boom"))},
			table:    want{metav1.ConditionTrue, v1alpha1.ReasonTableCreated, ""},
			backfill: want{metav1.ConditionFalse, v1alpha1.ReasonBackendError, "boom; retrying"},
			ready:    want{metav1.ConditionFalse, v1alpha1.ReasonBackendError, "ClickHouse: boom"},
		},
		{
			name:     "rebuilding after a spec change",
			active:   rollupWith("h0", v1alpha1.BackfillComplete),
			pending:  rollupWith("h1", v1alpha1.BackfillRunning),
			obs:      pipelineObservation{hash: "h1", tableReady: true},
			table:    want{metav1.ConditionTrue, v1alpha1.ReasonTableCreated, "t_h1"},
			backfill: want{metav1.ConditionFalse, v1alpha1.ReasonBackfilling, ""},
			ready:    want{metav1.ConditionFalse, v1alpha1.ReasonRebuilding, "previous table tenant_acme.t_h0"},
		},
		{
			name:     "serving",
			active:   rollupWith("h1", v1alpha1.BackfillComplete),
			obs:      pipelineObservation{hash: "h1", tableReady: true},
			table:    want{metav1.ConditionTrue, v1alpha1.ReasonTableCreated, ""},
			backfill: want{metav1.ConditionTrue, v1alpha1.ReasonBackfilled, "1 chunks, 7 stored events"},
			ready:    want{metav1.ConditionTrue, v1alpha1.ReasonServing, "queries read tenant_acme.t_h1"},
		},
		{
			name:     "serving without backfill",
			active:   rollupWith("h1", v1alpha1.BackfillDisabled),
			obs:      pipelineObservation{hash: "h1", tableReady: true},
			table:    want{metav1.ConditionTrue, v1alpha1.ReasonTableCreated, ""},
			backfill: want{metav1.ConditionTrue, v1alpha1.ReasonBackfillDisabled, "backfill is disabled"},
			ready:    want{metav1.ConditionTrue, v1alpha1.ReasonServing, ""},
		},
		{
			name:     "serving while a drift check fails",
			active:   rollupWith("h1", v1alpha1.BackfillComplete),
			obs:      pipelineObservation{hash: "h1", err: fromBackend(backendClickHouse, errors.New("down"))},
			table:    want{metav1.ConditionFalse, v1alpha1.ReasonBackendError, "down"},
			backfill: want{metav1.ConditionTrue, v1alpha1.ReasonBackfilled, ""},
			ready:    want{metav1.ConditionTrue, v1alpha1.ReasonServing, "last check failed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 3}}
			p.Status.Database, p.Status.Active, p.Status.Pending = "tenant_acme", tc.active, tc.pending
			setPipelineConditions(p, tc.obs)
			for condType, w := range map[string]want{
				v1alpha1.PipelineTableReady: tc.table, v1alpha1.PipelineBackfillComplete: tc.backfill, v1alpha1.ConditionReady: tc.ready,
			} {
				c := meta.FindStatusCondition(p.Status.Conditions, condType)
				if c == nil || c.Status != w.status || c.Reason != w.reason || !strings.Contains(c.Message, w.message) || c.ObservedGeneration != 3 {
					t.Errorf("%s = %+v, want %s/%s containing %q", condType, c, w.status, w.reason, w.message)
				}
			}
		})
	}
}

func TestCatalogRecord(t *testing.T) {
	pl := &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "clicks", Generation: 3},
		Spec: v1alpha1.PipelineSpec{
			Source:  v1alpha1.PipelineSource{EventTypes: []string{"click"}},
			Metrics: []v1alpha1.Metric{{Name: "n", Type: v1alpha1.MetricCount}},
		},
	}
	for _, tc := range []struct {
		name      string
		active    *v1alpha1.RollupStatus
		wantPut   bool
		wantTable string
	}{
		{"no table yet: raw events only", nil, true, ""},
		{"serving this spec", &v1alpha1.RollupStatus{Table: "t2", SpecHash: "h2", Cutoff: metav1.Unix(1_790_000_000, 0)}, true, "t2"},
		{"rebuilding: the catalog keeps the serving spec", &v1alpha1.RollupStatus{Table: "t1", SpecHash: "h1"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := pl.DeepCopy()
			pl.Status.Active = tc.active
			rec, put, err := catalogRecord("acme", pl, "h2")
			if err != nil || put != tc.wantPut {
				t.Fatalf("put %v, %v; want %v", put, err, tc.wantPut)
			}
			if put && tc.active != nil && !rec.RollupCutoff.Equal(tc.active.Cutoff.Time) {
				t.Errorf("cutoff %s, want the rollup's %s", rec.RollupCutoff, tc.active.Cutoff)
			}
			if put && (rec.RollupTable != tc.wantTable || rec.TenantID != "acme" || rec.Name != "clicks" || rec.Generation != 3 || !strings.Contains(string(rec.Spec), `"name":"n"`)) {
				t.Errorf("record %+v", rec)
			}
		})
	}
}
