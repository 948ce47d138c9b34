//! Vivaldi network coordinates as Serf computes them: each gossip pool
//! member owns a [`Client`] that moves its own coordinate from every
//! round trip it measures to a peer and that peer's coordinate, so that
//! the distance between two coordinates estimates the round trip
//! between their nodes without measuring it.
//!
//! Serf's refinements over plain Vivaldi are all here, with its
//! defaults ([`Config::default`]): a height above the Euclidean space for
//! the access link every packet crosses, a median filter over each
//! peer's last few samples against one-off delays, an adjustment term
//! averaged over a window of recent errors, and a weak gravity towards
//! the origin so that the whole system does not drift away over time.
//! A coordinate that goes NaN or infinite is reset rather than kept.

use std::collections::HashMap;
use std::time::Duration;

use thiserror::Error;

use crate::structs::coordinate::{
    Coordinate, DIMENSIONALITY, ERROR_MAX, HEIGHT_MIN, ZERO_THRESHOLD,
};

/// Serf's tuning of the algorithm.
#[derive(Debug, Clone)]
pub struct Config {
    pub dimensionality: usize,
    /// The largest (and initial) error a coordinate carries.
    pub vivaldi_error_max: f64,
    /// How fast the error estimate follows new samples (`c_e`).
    pub vivaldi_ce: f64,
    /// How far one sample moves the coordinate (`c_c`).
    pub vivaldi_cc: f64,
    /// Samples averaged into the adjustment term (0: no adjustment).
    pub adjustment_window_size: usize,
    pub height_min: f64,
    /// Samples per peer the median is taken over.
    pub latency_filter_size: usize,
    /// Distance (seconds) at which gravity pulls as hard as one sample.
    pub gravity_rho: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dimensionality: DIMENSIONALITY,
            vivaldi_error_max: ERROR_MAX,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: HEIGHT_MIN,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// Round trips beyond this are not samples but lost packets found late.
pub const MAX_RTT: Duration = Duration::from_secs(10);

/// Why a sample or a coordinate was refused.
#[derive(Debug, Error, PartialEq)]
pub enum CoordinateError {
    #[error("coordinate dimensions aren't compatible")]
    Incompatible,
    #[error("coordinate is invalid (NaN or infinite component)")]
    Invalid,
    #[error("round trip time {0:?} is not in the valid range (0, 10s]")]
    BadRtt(Duration),
}

/// One node's Vivaldi state: its coordinate and what refines it.
#[derive(Debug, Clone)]
pub struct Client {
    coord: Coordinate,
    /// Gravity pulls towards this fixed point.
    origin: Coordinate,
    config: Config,
    adjustment_index: usize,
    adjustment_samples: Vec<f64>,
    /// Each peer's last samples (seconds), oldest first.
    latency_samples: HashMap<String, Vec<f64>>,
    /// How many times the coordinate went invalid and was reset.
    resets: u64,
}

impl Default for Client {
    fn default() -> Self {
        Client::new(Config::default())
    }
}

impl Client {
    pub fn new(config: Config) -> Client {
        let fresh = Coordinate {
            vec: vec![0.0; config.dimensionality],
            error: config.vivaldi_error_max,
            adjustment: 0.0,
            height: config.height_min,
        };
        Client {
            coord: fresh.clone(),
            origin: fresh,
            adjustment_index: 0,
            adjustment_samples: vec![0.0; config.adjustment_window_size],
            latency_samples: HashMap::new(),
            resets: 0,
            config,
        }
    }

    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Estimated round trip from this node to a node at `other`.
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        self.coord.distance_to(other)
    }

    /// Drops `node`'s latency samples (it left the pool).
    pub fn forget_node(&mut self, node: &str) {
        self.latency_samples.remove(node);
    }

    fn check(&self, other: &Coordinate) -> Result<(), CoordinateError> {
        if !self.coord.is_compatible_with(other) {
            return Err(CoordinateError::Incompatible);
        }
        if !other.is_valid() {
            return Err(CoordinateError::Invalid);
        }
        Ok(())
    }

    /// One measured round trip `rtt` to `node`, which says it is at
    /// `other`: this node's coordinate moves to fit it. Returns the new
    /// coordinate.
    pub fn update(
        &mut self,
        node: &str,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<Coordinate, CoordinateError> {
        self.check(other)?;
        if rtt > MAX_RTT {
            return Err(CoordinateError::BadRtt(rtt));
        }
        let rtt = self.latency_filter(node, rtt.as_secs_f64());
        self.update_vivaldi(other, rtt);
        self.update_adjustment(other, rtt);
        self.update_gravity();
        if !self.coord.is_valid() {
            self.resets += 1;
            tracing::warn!(
                resets = self.resets,
                "network coordinate went invalid; starting again from the origin"
            );
            self.coord = self.origin.clone();
        }
        Ok(self.coord.clone())
    }

    /// The median of `node`'s last few samples, this one included.
    fn latency_filter(&mut self, node: &str, rtt: f64) -> f64 {
        let samples = self.latency_samples.entry(node.to_string()).or_default();
        samples.push(rtt);
        if samples.len() > self.config.latency_filter_size.max(1) {
            samples.remove(0);
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn update_vivaldi(&mut self, other: &Coordinate, rtt: f64) {
        let rtt = rtt.max(ZERO_THRESHOLD);
        let dist = self.coord.distance_secs(other);
        let wrongness = (dist - rtt).abs() / rtt;
        let total_error = (self.coord.error + other.error).max(ZERO_THRESHOLD);
        // A node sure of itself next to an unsure peer moves little.
        let weight = self.coord.error / total_error;
        let ce = self.config.vivaldi_ce * weight;
        self.coord.error =
            (ce * wrongness + self.coord.error * (1.0 - ce)).min(self.config.vivaldi_error_max);
        let force = self.config.vivaldi_cc * weight * (rtt - dist);
        self.coord = self.coord.apply_force(force, other, self.config.height_min);
    }

    /// The adjustment is half the mean of the recent residuals (each
    /// side of a pair carries half of what the space cannot express).
    fn update_adjustment(&mut self, other: &Coordinate, rtt: f64) {
        let window = self.config.adjustment_window_size;
        if window == 0 {
            return;
        }
        self.adjustment_samples[self.adjustment_index] = rtt - self.coord.raw_distance_to(other);
        self.adjustment_index = (self.adjustment_index + 1) % window;
        let sum: f64 = self.adjustment_samples.iter().sum();
        self.coord.adjustment = sum / (2.0 * window as f64);
    }

    fn update_gravity(&mut self) {
        let dist = self.origin.distance_secs(&self.coord);
        let force = -(dist / self.config.gravity_rho).powi(2);
        self.coord = self
            .coord
            .apply_force(force, &self.origin, self.config.height_min);
    }
}

#[cfg(test)]
mod tests;
