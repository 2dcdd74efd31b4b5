/// The release of Abstract Backend that this code is.
///
/// Applications can log it at start-up, and providers can name it in diagnostics. It follows
/// semantic versioning: a major release may break source compatibility (of
/// ``MessageQueueBackend``, ``MessageQueueProvider`` or any other public API), a minor release
/// only adds, a patch release only fixes. The release checklist (`docs/release-checklist.md`)
/// updates it together with `CHANGELOG.md` and the git tag.
///
/// ```swift
/// logger.info("starting", metadata: ["abstract-backend": "\(AbstractBackendRelease.version)"])
/// ```
// Not `AbstractBackendVersion`: symbol graphs leave out every name that starts with the module's
// name followed by `Version`, so DocC would not document it.
public enum AbstractBackendRelease {
    /// The version as `major.minor.patch`, such as `0.1.0`.
    public static let version = "0.1.0"
}
