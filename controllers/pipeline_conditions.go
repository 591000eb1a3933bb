package controllers

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/api/v1alpha1"
	"github.com/shoal-dev/shoal/internal/kafka"
	"github.com/shoal-dev/shoal/internal/rollup"
)

// pipelineObservation is what one reconcile of a Pipeline saw, from which its conditions
// are derived.
type pipelineObservation struct {
	// tenantProblem says why the tenant cannot hold the rollup yet; empty when it can.
	tenantProblem string
	// hash of the current spec; its rollup is status.pending or status.active.
	hash string
	// tableReady: the current spec's table and view exist.
	tableReady bool
	// lag is the processor's progress while the backfill waits for it.
	lag *kafka.Progress
	// err stopped the reconcile: an invalid spec (rollup.InvalidSpecError) or a backend.
	err error
}

// currentRollup is the rollup of the current spec: pending while it is built, active
// once it serves.
func currentRollup(p *v1alpha1.Pipeline, hash string) *v1alpha1.RollupStatus {
	if r := p.Status.Pending; r != nil && r.SpecHash == hash {
		return r
	}
	if r := p.Status.Active; r != nil && r.SpecHash == hash {
		return r
	}
	return nil
}

// setPipelineConditions derives TableReady, BackfillComplete and Ready from what the
// reconcile saw.
func setPipelineConditions(p *v1alpha1.Pipeline, obs pipelineObservation) {
	setPipelineTableCondition(p, obs)
	setPipelineBackfillCondition(p, obs)
	setPipelineReadyCondition(p, obs)
}

// setPipelineTableCondition: the current spec's table and view exist, are being made, or
// cannot be (tenant not ready, invalid spec, ClickHouse failing).
func setPipelineTableCondition(p *v1alpha1.Pipeline, obs pipelineObservation) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(&p.Status.Conditions, p.Generation, v1alpha1.PipelineTableReady, status, reason, message)
	}
	var invalid *rollup.InvalidSpecError
	cur := currentRollup(p, obs.hash)
	switch {
	case obs.tenantProblem != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, obs.tenantProblem)
	case errors.As(obs.err, &invalid):
		set(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, invalid.Error())
	case obs.tableReady && cur != nil:
		set(metav1.ConditionTrue, v1alpha1.ReasonTableCreated, fmt.Sprintf("table %s.%s fed by view %s", p.Status.Database, cur.Table, cur.View))
	case obs.err != nil:
		set(metav1.ConditionFalse, failureReason(obs.err), obs.err.Error()+"; retrying")
	default:
		set(metav1.ConditionFalse, v1alpha1.ReasonInProgress, "creating the rollup table and view")
	}
}

// setPipelineBackfillCondition reports the current spec's backfill.
func setPipelineBackfillCondition(p *v1alpha1.Pipeline, obs pipelineObservation) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(&p.Status.Conditions, p.Generation, v1alpha1.PipelineBackfillComplete, status, reason, message)
	}
	cur := currentRollup(p, obs.hash)
	if cur == nil || obs.tenantProblem != "" {
		set(metav1.ConditionFalse, v1alpha1.ReasonInProgress, "no rollup table for this spec yet")
		return
	}
	b := cur.Backfill
	switch b.Phase {
	case v1alpha1.BackfillDisabled:
		set(metav1.ConditionTrue, v1alpha1.ReasonBackfillDisabled, "backfill is disabled: only events received from "+cur.Cutoff.UTC().Format("2006-01-02T15:04:05Z")+" on are aggregated")
	case v1alpha1.BackfillComplete:
		set(metav1.ConditionTrue, v1alpha1.ReasonBackfilled, fmt.Sprintf("%d chunks, %d stored events aggregated", b.CompletedChunks, b.Events))
	case v1alpha1.BackfillRunning:
		msg := fmt.Sprintf("%d of %d chunks done, %d events aggregated", b.CompletedChunks, b.TotalChunks, b.Events)
		if b.LastChunk != "" {
			msg += ", last chunk " + b.LastChunk
		}
		if obs.err != nil {
			set(metav1.ConditionFalse, failureReason(obs.err), msg+"; "+obs.err.Error()+"; retrying")
			return
		}
		set(metav1.ConditionFalse, v1alpha1.ReasonBackfilling, msg)
	default:
		msg := "waiting for the processor to store every event received before " + cur.Cutoff.UTC().Format("2006-01-02T15:04:05Z")
		if obs.lag != nil {
			msg += ": " + obs.lag.String()
		}
		if obs.err != nil {
			set(metav1.ConditionFalse, failureReason(obs.err), msg+"; "+obs.err.Error()+"; retrying")
			return
		}
		set(metav1.ConditionFalse, v1alpha1.ReasonWaitingForProcessor, msg)
	}
}

// setPipelineReadyCondition: Ready only when the current spec's rollup serves queries.
func setPipelineReadyCondition(p *v1alpha1.Pipeline, obs pipelineObservation) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(&p.Status.Conditions, p.Generation, v1alpha1.ConditionReady, status, reason, message)
	}
	var invalid *rollup.InvalidSpecError
	active := p.Status.Active
	switch {
	case obs.tenantProblem != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonTenantNotReady, obs.tenantProblem)
	case errors.As(obs.err, &invalid):
		set(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, invalid.Error())
	case active != nil && active.SpecHash == obs.hash && p.Status.Pending == nil:
		if obs.err != nil {
			// Serving, though a check failed: the table is still there for queries.
			set(metav1.ConditionTrue, v1alpha1.ReasonServing, fmt.Sprintf("queries read %s.%s; last check failed: %v", p.Status.Database, active.Table, obs.err))
			return
		}
		set(metav1.ConditionTrue, v1alpha1.ReasonServing, fmt.Sprintf("queries read %s.%s", p.Status.Database, active.Table))
	case obs.err != nil:
		set(metav1.ConditionFalse, failureReason(obs.err), obs.err.Error()+"; retrying")
	case active != nil:
		set(metav1.ConditionFalse, v1alpha1.ReasonRebuilding, fmt.Sprintf("the spec changed: queries read the previous table %s.%s while the new one is built", p.Status.Database, active.Table))
	default:
		set(metav1.ConditionFalse, v1alpha1.ReasonInProgress, "the rollup is being built")
	}
}
