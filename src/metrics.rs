//! The agent's Prometheus registry. Each part declares its own metrics next to the code that
//! counts them, named `logsieve_<part>_<what>_<unit>` (counters end in `_total`); this module
//! only owns the registry, the text rendering, and one rule: declaring a metric that is already
//! declared hands back the same metric. So a part built twice (two file sources, a sink rebuilt)
//! counts into one series set instead of failing to register.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    TextEncoder,
};

/// A Prometheus registry where every metric is declared once, by name.
#[derive(Clone, Default)]
pub struct Registry {
    inner: prometheus::Registry,
    declared: Arc<Mutex<HashMap<String, Box<dyn Any + Send>>>>,
}

impl Registry {
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.declare(name, || {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        })
    }

    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.declare(name, || IntGauge::new(name, help).expect("valid metric"))
    }

    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.declare(name, || {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        })
    }

    pub fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        self.declare(name, || {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric")
        })
    }

    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> HistogramVec {
        self.declare(name, || {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("valid metric")
        })
    }

    /// The registry in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.inner.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }

    fn declare<M>(&self, name: &str, make: impl FnOnce() -> M) -> M
    where
        M: Collector + Clone + Send + 'static,
    {
        let mut declared = self.declared.lock().expect("metrics lock");
        if let Some(metric) = declared.get(name) {
            return metric
                .downcast_ref::<M>()
                .unwrap_or_else(|| panic!("metric {name} declared twice with different kinds"))
                .clone();
        }
        let metric = make();
        self.inner
            .register(Box::new(metric.clone()))
            .unwrap_or_else(|e| panic!("metric {name}: {e}"));
        declared.insert(name.to_string(), Box::new(metric.clone()));
        metric
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaring_a_metric_twice_hands_back_the_same_one() {
        let registry = Registry::default();
        let a = registry.counter_vec("logsieve_test_total", "help", &["x"]);
        let b = registry.counter_vec("logsieve_test_total", "help", &["x"]);
        a.with_label_values(&["1"]).inc();
        b.with_label_values(&["1"]).inc();
        assert_eq!(a.with_label_values(&["1"]).get(), 2);
        assert!(registry.render().contains("logsieve_test_total{x=\"1\"} 2"));
    }
}
