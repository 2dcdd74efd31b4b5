extension Duration {
    /// `250ms`, `30s`, `1.5s`: the spelling ``EnvironmentReader`` accepts. Shared with the
    /// providers of this package for their configuration texts.
    package var formatted: String {
        let (seconds, attoseconds) = components
        if attoseconds == 0 { return "\(seconds)s" }
        if seconds == 0 && attoseconds % 1_000_000_000_000_000 == 0 {
            return "\(attoseconds / 1_000_000_000_000_000)ms"
        }
        return "\(Double(seconds) + Double(attoseconds) / 1e18)s"
    }

    /// The duration in whole milliseconds, rounded towards zero: what `BLOCK`, `IDLE` and
    /// on-disk deadlines count in.
    package var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in whole nanoseconds, rounded towards zero: what swift-metrics timers record.
    package var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in seconds, as a `Double`.
    package var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
