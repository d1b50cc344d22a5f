//! The DataFusion query layer: drift statistics as user-defined aggregate functions, and the
//! per-window aggregate query.
//!
//! Every drift method is a UDAF over a feature column, bound to a model's reference profiles:
//! `psi(col, 'feature')`, `kl`, `jensen_shannon`, `hellinger`, `ks` (D), `ks_pvalue`,
//! `wasserstein`, `wasserstein_normed`, `chi2`, `chi2_pvalue`, `l_infinity`, each a `Float64`
//! (users' per-window metrics call them; a window's own report is computed without SQL, in
//! [`crate::stream`]'s typed pass). The accumulator is the mergeable [`FeatureState`]: `state()` serialises it, `merge_batch`
//! deserialises and merges, so DataFusion's partial/final aggregation (and repartitioned plans)
//! give the single-pass result. `quantile(col, q)` is an exact quantile with linear interpolation
//! (numpy's default) that is NULL, never a bucket bound, without observations (edge case E17).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::drift::{DriftSettings, evaluate};
use crate::error::AnalyzerError;
use crate::profile::ReferenceProfile;
use crate::state::{FeatureModel, FeatureState};
use crate::stats::Method;

/// A model's profiles prepared for the UDAFs: one [`FeatureModel`] per feature.
#[derive(Debug)]
pub struct ProfileSet {
    features: HashMap<String, FeatureModel>,
    settings: DriftSettings,
}

impl ProfileSet {
    /// Prepares every feature of `profile`.
    pub fn new(profile: &ReferenceProfile, settings: DriftSettings) -> Self {
        let features = profile
            .features
            .iter()
            .map(|f| (f.name().to_string(), FeatureModel::new(f.clone())))
            .collect();
        // A window judges every feature of the profile together.
        let settings = settings.for_window_of(profile.features.len());
        Self { features, settings }
    }

    /// No profiles (a model without a reference): only `quantile` and errors from the drift UDAFs.
    pub fn empty(settings: DriftSettings) -> Self {
        Self {
            features: HashMap::new(),
            settings,
        }
    }

    /// The drift settings the UDAFs judge with.
    pub fn settings(&self) -> &DriftSettings {
        &self.settings
    }

    /// The prepared model of feature `name`; `None` when the profile has no such feature.
    pub fn feature(&self, name: &str) -> Option<&FeatureModel> {
        self.features.get(name)
    }
}

/// What a drift UDAF returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    /// The statistic (distance, KS D, chi-square statistic).
    Value(Method),
    /// The p-value of KS or chi-square.
    PValue(Method),
}

/// A drift statistic as an aggregate function `name(column, 'feature')`.
#[derive(Debug)]
struct DriftUdaf {
    name: String,
    output: Output,
    profiles: Arc<ProfileSet>,
    signature: Signature,
}

impl PartialEq for DriftUdaf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.output == other.output
            && Arc::ptr_eq(&self.profiles, &other.profiles)
    }
}

impl Eq for DriftUdaf {}

impl Hash for DriftUdaf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.output.hash(state);
    }
}

fn literal_text(args: &AccumulatorArgs<'_>, index: usize, what: &str) -> DfResult<String> {
    args.exprs
        .get(index)
        .and_then(|e| e.downcast_ref::<Literal>())
        .and_then(|l| match l.value() {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            DataFusionError::Plan(format!(
                "{}: argument {} must be a literal {what}",
                args.name,
                index + 1
            ))
        })
}

fn literal_f64(args: &AccumulatorArgs<'_>, index: usize) -> DfResult<f64> {
    args.exprs
        .get(index)
        .and_then(|e| e.downcast_ref::<Literal>())
        .and_then(|l| match l.value() {
            ScalarValue::Float64(Some(v)) => Some(*v),
            ScalarValue::Float32(Some(v)) => Some(f64::from(*v)),
            ScalarValue::Int64(Some(v)) => Some(*v as f64),
            _ => None,
        })
        .ok_or_else(|| {
            DataFusionError::Plan(format!(
                "{}: argument {} must be a literal number",
                args.name,
                index + 1
            ))
        })
}

impl AggregateUDFImpl for DriftUdaf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> DfResult<Box<dyn Accumulator>> {
        let feature = literal_text(&args, 1, "feature name")?;
        let model = self
            .profiles
            .features
            .get(&feature)
            .cloned()
            .ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "{}: no reference profile for feature `{feature}`",
                    self.name
                ))
            })?;
        let state = model.new_state();
        Ok(Box::new(DriftAccumulator {
            model,
            state,
            profiles: self.profiles.clone(),
            output: self.output,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_state", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

/// Accumulates a [`FeatureState`]; the partial state travels as JSON bytes.
#[derive(Debug)]
struct DriftAccumulator {
    model: FeatureModel,
    state: FeatureState,
    profiles: Arc<ProfileSet>,
    output: Output,
}

impl Accumulator for DriftAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(column) = values.first() else {
            return Ok(());
        };
        self.model
            .add_array(&mut self.state, column)
            .map_err(|bad| {
                DataFusionError::Execution(format!(
                    "feature `{}`: `{}` is not a number",
                    self.model.profile().name(),
                    bad.value
                ))
            })
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let drift = evaluate(
            self.model.profile(),
            &self.state,
            &self.profiles.settings,
            None,
        );
        Ok(match self.output {
            Output::Value(m) => ScalarValue::Float64(drift.method(m).and_then(|r| r.value)),
            Output::PValue(m) => ScalarValue::Float64(drift.method(m).and_then(|r| r.p_value)),
        })
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + match &self.state {
                FeatureState::Numeric(s) => s.values.capacity() * 8 + s.counts.capacity() * 8,
                FeatureState::Categorical(s) => s.counts.capacity() * 8 + s.unseen.len() * 32,
            }
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let bytes = serde_json::to_vec(&self.state)
            .map_err(|e| DataFusionError::Execution(e.to_string()))?;
        Ok(vec![ScalarValue::Binary(Some(bytes))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(array) = states.first() else {
            return Ok(());
        };
        let binary: &BinaryArray = array.as_binary::<i32>();
        for bytes in binary.iter().flatten() {
            let other: FeatureState = serde_json::from_slice(bytes)
                .map_err(|e| DataFusionError::Execution(e.to_string()))?;
            self.state
                .merge(&other)
                .map_err(|e| DataFusionError::Execution(e.to_string()))?;
        }
        Ok(())
    }
}

/// `quantile(column, q)`: the exact `q`-quantile with linear interpolation; NULL without values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct QuantileUdaf {
    signature: Signature,
}

impl AggregateUDFImpl for QuantileUdaf {
    fn name(&self) -> &str {
        "quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> DfResult<Box<dyn Accumulator>> {
        let q = literal_f64(&args, 1)?;
        if !(0.0..=1.0).contains(&q) {
            return Err(DataFusionError::Plan(format!(
                "quantile: q = {q} is not in [0, 1]"
            )));
        }
        Ok(Box::new(QuantileAccumulator {
            q,
            values: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_values", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

#[derive(Debug)]
struct QuantileAccumulator {
    q: f64,
    values: Vec<f64>,
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(column) = values.first() else {
            return Ok(());
        };
        let floats = datafusion::arrow::compute::cast(column, &DataType::Float64)?;
        let floats: &Float64Array = floats.as_primitive();
        self.values
            .extend(floats.iter().flatten().filter(|v| v.is_finite()));
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Float64(quantile(&mut self.values, self.q)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * 8
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(vec![ScalarValue::Binary(Some(bytes))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(array) = states.first() else {
            return Ok(());
        };
        for bytes in array.as_binary::<i32>().iter().flatten() {
            self.values.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
        Ok(())
    }
}

/// The `q`-quantile of `values` by linear interpolation between closest ranks (numpy's default
/// `method="linear"`); `None` for no values. Sorts `values` in place.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    crate::kernels::sort_total(values);
    quantile_sorted(values, q)
}

/// The `q`-quantile of `sorted` (ascending in `f64::total_cmp` order) by linear interpolation
/// between closest ranks, as [`quantile`] without the sort; `None` for no values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * t)
}

/// The names of the drift UDAFs and what they return.
const DRIFT_FUNCTIONS: [(&str, Output); 11] = [
    ("psi", Output::Value(Method::Psi)),
    ("kl", Output::Value(Method::Kl)),
    ("jensen_shannon", Output::Value(Method::JensenShannon)),
    ("hellinger", Output::Value(Method::Hellinger)),
    ("ks", Output::Value(Method::Ks)),
    ("ks_pvalue", Output::PValue(Method::Ks)),
    ("wasserstein", Output::Value(Method::Wasserstein)),
    (
        "wasserstein_normed",
        Output::Value(Method::WassersteinNormed),
    ),
    ("chi2", Output::Value(Method::Chi2)),
    ("chi2_pvalue", Output::PValue(Method::Chi2)),
    ("l_infinity", Output::Value(Method::LInfinity)),
];

/// A session with the drift UDAFs bound to `profiles` and `quantile` registered.
///
/// Plans run in one partition: a window's query then aggregates in a single pass
/// (DataFusion's `AggregateMode::Single`), without the round-robin repartition into one partial
/// aggregate per core whose [`FeatureState`]s would be serialised and merged. A window holds at
/// most `max_window_events` rows, far too few for the split to pay; the analyzer's parallelism is
/// across windows and sources, not within one. A table registered with several partitions is
/// still aggregated per partition and merged.
pub fn session(profiles: Arc<ProfileSet>) -> SessionContext {
    let config = datafusion::prelude::SessionConfig::new().with_target_partitions(1);
    let ctx = SessionContext::new_with_config(config);
    register(&ctx, profiles);
    ctx
}

/// Registers the drift UDAFs (bound to `profiles`) and `quantile` in `ctx`.
pub fn register(ctx: &SessionContext, profiles: Arc<ProfileSet>) {
    let any_and_text = Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable);
    for (name, output) in DRIFT_FUNCTIONS {
        ctx.register_udaf(AggregateUDF::from(DriftUdaf {
            name: name.to_string(),
            output,
            profiles: profiles.clone(),
            signature: any_and_text.clone(),
        }));
    }
    ctx.register_udaf(AggregateUDF::from(QuantileUdaf {
        signature: Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
    }));
}

/// Quotes an identifier for SQL (`"name"`, with inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL (`'text'`, with inner quotes doubled).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs `sql` over `batches` registered as table `table` and returns the result batches.
///
/// # Errors
/// [`AnalyzerError::Query`] for planning or execution errors.
pub async fn query(
    ctx: &SessionContext,
    table: &str,
    batches: Vec<RecordBatch>,
    sql: &str,
) -> Result<Vec<RecordBatch>, AnalyzerError> {
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => return Err(AnalyzerError::Query("no batches".into())),
    };
    let mem = datafusion::datasource::MemTable::try_new(schema, vec![batches])
        .map_err(|e| AnalyzerError::Query(e.to_string()))?;
    ctx.register_table(table, Arc::new(mem))
        .map_err(|e| AnalyzerError::Query(e.to_string()))?;
    let result = async { ctx.sql(sql).await?.collect().await }.await;
    let _ = ctx.deregister_table(table);
    result.map_err(|e| AnalyzerError::Query(format!("{e} (query: {sql})")))
}

/// One query over an in-memory table, planned once and run again over other batches of the same
/// schema: SQL parsing, logical optimisation and physical planning (about 10M instructions for a
/// window's drift query over a car_loan-shaped model) happen once instead of at every window
/// close. Only the plan's in-memory scan is replaced on each run.
///
/// The kept plan holds no data: its scan is emptied after planning.
pub struct PreparedQuery {
    schema: SchemaRef,
    sql: String,
    plan: Arc<dyn ExecutionPlan>,
}

impl std::fmt::Debug for PreparedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedQuery")
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

impl PreparedQuery {
    /// Plans `sql` over `batches` registered as table `table` (the name only lives while
    /// planning).
    ///
    /// # Errors
    /// [`AnalyzerError::Query`] for no batches, planning errors, or a plan that does not read the
    /// table through exactly one in-memory scan (then it cannot be re-run over other batches; use
    /// [`query`]).
    pub async fn new(
        ctx: &SessionContext,
        table: &str,
        batches: Vec<RecordBatch>,
        sql: &str,
    ) -> Result<Self, AnalyzerError> {
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => return Err(AnalyzerError::Query("no batches".into())),
        };
        let mem = datafusion::datasource::MemTable::try_new(schema.clone(), vec![batches])
            .map_err(|e| AnalyzerError::Query(e.to_string()))?;
        ctx.register_table(table, Arc::new(mem))
            .map_err(|e| AnalyzerError::Query(e.to_string()))?;
        let planned = async { ctx.sql(sql).await?.create_physical_plan().await }.await;
        let _ = ctx.deregister_table(table);
        let plan = planned.map_err(|e| AnalyzerError::Query(format!("{e} (query: {sql})")))?;
        let (plan, scans) = with_memory_scan(plan, Vec::new())?;
        if scans != 1 {
            return Err(AnalyzerError::Query(format!(
                "the plan reads {scans} in-memory scans, not one (query: {sql})"
            )));
        }
        Ok(Self {
            schema,
            sql: sql.to_string(),
            plan,
        })
    }

    /// Whether this is `sql` over `batches`: every batch has the schema it was planned for.
    pub fn is_for(&self, batches: &[RecordBatch], sql: &str) -> bool {
        self.sql == sql && batches.iter().all(|b| self.planned_for(&b.schema()))
    }

    fn planned_for(&self, schema: &SchemaRef) -> bool {
        Arc::ptr_eq(&self.schema, schema) || self.schema == *schema
    }

    /// Runs the plan over `batches`, which must all have the schema it was planned for.
    ///
    /// # Errors
    /// [`AnalyzerError::Query`] when a batch has another schema, or for execution errors.
    pub async fn run(
        &self,
        ctx: &SessionContext,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, AnalyzerError> {
        if let Some(b) = batches.iter().find(|b| !self.planned_for(&b.schema())) {
            return Err(AnalyzerError::Query(format!(
                "a batch's schema {:?} is not the prepared query's {:?}",
                b.schema(),
                self.schema
            )));
        }
        let (plan, _) = with_memory_scan(self.plan.clone(), batches)?;
        datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .map_err(|e| AnalyzerError::Query(format!("{e} (query: {})", self.sql)))
    }
}

/// `plan` with every in-memory scan reading `batches` (one partition) instead of its own data,
/// keeping the scan's schema and projection, and every other node's execution state reset
/// ([`datafusion::physical_plan::execution_plan::reset_plan_states`]); and how many scans there
/// were.
fn with_memory_scan(
    plan: Arc<dyn ExecutionPlan>,
    batches: Vec<RecordBatch>,
) -> Result<(Arc<dyn ExecutionPlan>, usize), AnalyzerError> {
    let mut scans = 0;
    let partitions = [batches];
    let plan = plan
        .transform_up(|node| {
            let source = node
                .downcast_ref::<DataSourceExec>()
                .and_then(|exec| exec.data_source().downcast_ref::<MemorySourceConfig>());
            match source {
                Some(memory) => {
                    scans += 1;
                    let scan: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(
                        &partitions,
                        memory.original_schema(),
                        memory.projection().clone(),
                    )?;
                    Ok(Transformed::yes(scan))
                }
                None => Ok(Transformed::yes(node.reset_state()?)),
            }
        })
        .data()
        .map_err(|e| AnalyzerError::Query(e.to_string()))?;
    Ok((plan, scans))
}

/// The value of column `name` in the first row of `batches` as `f64` (NULL -> `None`).
pub fn scalar_f64(batches: &[RecordBatch], name: &str) -> Option<f64> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let column = batch.column_by_name(name)?;
    let floats = datafusion::arrow::compute::cast(column, &DataType::Float64).ok()?;
    let floats: &Float64Array = floats.as_primitive();
    floats.is_valid(0).then(|| floats.value(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_numpy_linear_and_none_when_empty() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&mut v, 0.5), Some(2.5));
        assert_eq!(quantile(&mut v, 0.95), Some(3.8499999999999996));
        assert_eq!(quantile(&mut v, 0.0), Some(1.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
