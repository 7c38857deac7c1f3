// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IOracleHub
/// @notice A multi-feed price oracle. Batches of reports signed (EIP-712) by at least `threshold`
///         distinct authorized signers update many feeds in one transaction; any account may relay
///         a validly signed batch. Each feed keeps its last 64 rounds.
/// @dev Feeds are named by `feedId = keccak256(bytes(pair))`, e.g. `keccak256("BTC/USD")`, and addressed
///      in reports by the index the hub assigned at registration (see `feedIndex`); signatures bind the
///      index to this hub and chain through the EIP-712 domain.
///
///      Wire format of `submit` (packed, big-endian, to keep calldata small): each report is 26 bytes,
///      `feedIndex (2) | roundId (4) | price (16, two's complement) | observedAt (4)`; each signature is
///      65 bytes, `r (32) | s (32) | v (1)`. Every field has exactly its type's width, so no value can be
///      truncated or carry stray high bits. Signers sign the EIP-712 typed data `Batch(Report[] reports)`
///      of the unpacked reports (see `batchDigest`), not the bytes.
///
///      Batch policy: the signature set is checked for the whole batch (any fault reverts it). A report
///      that fails its own checks (unknown or paused feed, round other than latest + 1, observation time
///      going back, too far ahead or older than the feed's `maxReportAge`, price out of bounds) is
///      skipped with `ReportRejected` and the other reports still apply: one bad feed never blocks the
///      rest.
interface IOracleHub {
    /// @notice One feed's new value, as signed by the oracle's signers.
    /// @param feedIndex  The feed's index in this hub.
    /// @param roundId    Must be the feed's latest round + 1 (rounds are consecutive).
    /// @param price      Price scaled by 10^decimals of the feed; must lie strictly inside the bounds.
    /// @param observedAt Unix seconds of the observations the price was computed from.
    struct Report {
        uint16 feedIndex;
        uint32 roundId;
        int128 price;
        uint32 observedAt;
    }

    /// @notice Everything the hub knows about a feed.
    struct FeedInfo {
        bytes32 feedId;
        uint16 index;
        uint8 decimals;
        bool paused;
        int256 minPrice;
        int256 maxPrice;
        uint32 heartbeat;
        uint32 maxReportAge;
        string description;
    }

    // ------------------------------------------------------------------ errors

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice The zero address is not allowed here.
    error ZeroAddress();
    /// @notice No feed with this id is registered.
    error UnknownFeed(bytes32 feedId);
    /// @notice No feed with this index is registered.
    error UnknownFeedIndex(uint16 feedIndex);
    /// @notice The feed is registered already.
    error FeedExists(bytes32 feedId);
    /// @notice The hub holds the maximum number of feeds (65535).
    error TooManyFeeds();
    /// @notice Bounds must satisfy 0 <= min < max, each m * 10^e with m < 65536.
    error InvalidBounds(int256 minPrice, int256 maxPrice);
    /// @notice Decimals above 36 are not supported.
    error InvalidDecimals(uint8 decimals);
    /// @notice The batch holds no report.
    error EmptyBatch();
    /// @notice The packed reports or signatures are not a whole number of 26- or 65-byte records.
    error MalformedBatch(uint256 reportsLength, uint256 signaturesLength);
    /// @notice `maxReportAge` must be within 1..4095 seconds.
    error InvalidMaxReportAge(uint256 maxReportAge);
    /// @notice Submissions are paused for every feed.
    error HubPaused();
    /// @notice Fewer signatures than the threshold.
    error BelowThreshold(uint256 given, uint256 threshold);
    /// @notice A signature is malformed (bad v, high s, or unrecoverable).
    error InvalidSignature(uint256 index);
    /// @notice The recovered address is not an authorized signer.
    error UnauthorizedSigner(address signer);
    /// @notice Signers must be strictly ascending by address (this also rejects duplicates).
    error SignersNotAscending(address previous, address next);
    /// @notice The hub holds at most 255 signers.
    error TooManySigners(uint256 count);
    /// @notice The address is a signer already.
    error SignerExists(address signer);
    /// @notice The address is not a signer.
    error NotASigner(address signer);
    /// @notice Threshold must be within 1..signerCount.
    error InvalidThreshold(uint256 threshold, uint256 signerCount);
    /// @notice The feed has no value yet.
    error NoData(bytes32 feedId);
    /// @notice The round was never stored or has left the 64-round history.
    error RoundNotAvailable(bytes32 feedId, uint256 roundId, uint256 latestRound);
    /// @notice The latest value is older than the caller accepts.
    error StalePrice(bytes32 feedId, uint256 updatedAt, uint256 maxAge);

    // Reasons a report is skipped (their selectors travel in `ReportRejected.reason`).

    /// @notice The report's round is not the feed's latest round + 1.
    error UnexpectedRound(uint16 feedIndex, uint32 given, uint32 current);
    /// @notice The report's observation time is older than the stored one.
    error ObservationTooOld(uint16 feedIndex, uint32 given, uint32 current);
    /// @notice The report's observation time is ahead of the block beyond the allowed skew.
    error ObservationInFuture(uint16 feedIndex, uint32 given, uint256 blockTime);
    /// @notice The report's observation time is older than the feed's `maxReportAge` at inclusion: a
    ///         signed batch withheld and relayed later cannot look fresh to consumers.
    error ReportTooOld(uint16 feedIndex, uint32 observedAt, uint256 blockTime);
    /// @notice The price is at or beyond the feed's bounds (never clamped).
    error OutOfBounds(uint16 feedIndex, int128 price);
    /// @notice The feed is paused.
    error FeedPaused(uint16 feedIndex);

    // ------------------------------------------------------------------ events

    /// @notice A feed was registered.
    event FeedAdded(
        bytes32 indexed feedId,
        uint16 indexed feedIndex,
        uint8 decimals,
        int256 minPrice,
        int256 maxPrice,
        uint32 heartbeat,
        uint32 maxReportAge,
        string description
    );
    /// @notice A feed's bounds changed.
    event BoundsSet(bytes32 indexed feedId, int256 minPrice, int256 maxPrice);
    /// @notice A feed's report age limit changed.
    event MaxReportAgeSet(bytes32 indexed feedId, uint32 maxReportAge);
    /// @notice A feed was paused or resumed.
    event FeedPausedSet(bytes32 indexed feedId, bool paused);
    /// @notice All submissions were paused or resumed.
    event HubPausedSet(bool paused);
    /// @notice A signer was authorized.
    event SignerAdded(address indexed signer);
    /// @notice A signer was removed.
    event SignerRemoved(address indexed signer);
    /// @notice The signature threshold changed.
    event ThresholdSet(uint256 threshold);
    /// @notice An ownership transfer was proposed.
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice The ownership transfer was accepted.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    /// @notice A feed took a new value. `update` packs the round and its value in one word (one word of
    ///         log data instead of three saves 512 gas per feed): bits 224..255 roundId (uint32),
    ///         192..223 observedAt (uint32), 0..127 price (int128, two's complement); bits 128..191 are 0.
    ///         The time the chain stored it is the block's timestamp.
    event PriceUpdated(uint16 indexed feedIndex, uint256 update);
    /// @notice A report was skipped; `reason` is the selector of the matching error above.
    event ReportRejected(uint16 indexed feedIndex, uint32 roundId, bytes4 reason);

    // ------------------------------------------------------------------ writes

    /// @notice Verify a signed batch and apply its reports (see the batch policy above).
    /// @param reports    The packed reports, 26 bytes each (see the wire format above).
    /// @param signatures Packed signatures over `batchDigest(reports)`, 65 bytes each, ordered by
    ///                   ascending signer address; v is 27 or 28 and s in the lower half order.
    function submit(bytes calldata reports, bytes calldata signatures) external;

    /// @notice Pull: verify and apply a signed batch exactly as `submit` does, then return one feed's
    ///         value as it stands after the batch, in the same call. For consumers that bring the
    ///         oracle's latest signed batch in their own transaction (paying its gas) to read a value
    ///         fresher than the last push. The signature set is checked as in `submit` (any fault
    ///         reverts, so does a paused hub), and each report is applied or skipped with
    ///         `ReportRejected` under the same rules: a report the aggregator has already pushed (its
    ///         round is no longer latest + 1) is skipped, and the stored value is returned.
    /// @dev The returned value is the feed's latest, whether this batch moved it or not, and is all zero
    ///      when the feed has no value yet: check `roundId`, and check the age yourself (`observedAt` is
    ///      when the price was observed; `updatedAt` is the current block for a value this call
    ///      stored). The `OraclePull` library does both.
    /// @param reports    The packed reports, 26 bytes each (see the wire format above).
    /// @param signatures As for `submit`.
    /// @param feedId     The feed to read (it need not be in the batch). Reverts with UnknownFeed.
    /// @return price      Scaled by 10^decimals.
    /// @return decimals   The feed's decimals.
    /// @return roundId    The latest round; 0 when the feed has no value.
    /// @return observedAt Unix seconds of the observations behind the value.
    /// @return updatedAt  Unix seconds of the block that stored it.
    function updateAndRead(bytes calldata reports, bytes calldata signatures, bytes32 feedId)
        external
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt);

    /// @notice Register a feed. Owner only. Pre-writes its 64-round history so that every update
    ///         costs the same.
    /// @param feedId      keccak256 of the pair name.
    /// @param decimals    Decimals of the scaled price.
    /// @param minPrice    Prices must be greater (scaled units).
    /// @param maxPrice    Prices must be smaller (scaled units).
    /// @param heartbeat   Seconds between updates the oracle aims at (a hint for readers).
    /// @param maxReportAge Seconds a report's observation time may lie behind the block that includes it
    ///                    (1..4095); older reports are skipped.
    /// @param description Human-readable name, e.g. "BTC / USD".
    /// @return index The feed's index, used in reports.
    function addFeed(
        bytes32 feedId,
        uint8 decimals,
        int256 minPrice,
        int256 maxPrice,
        uint32 heartbeat,
        uint32 maxReportAge,
        string calldata description
    ) external returns (uint16 index);

    /// @notice Change a feed's bounds. Owner only.
    function setBounds(bytes32 feedId, int256 minPrice, int256 maxPrice) external;

    /// @notice Change a feed's report age limit (1..4095 seconds). Owner only.
    function setMaxReportAge(bytes32 feedId, uint32 maxReportAge) external;

    /// @notice Pause or resume one feed. Owner only.
    function setFeedPaused(bytes32 feedId, bool paused) external;

    /// @notice Pause or resume every submission. Owner only.
    function setPaused(bool paused) external;

    /// @notice Authorize a signer. Owner only.
    function addSigner(address signer) external;

    /// @notice Remove a signer; the threshold must stay reachable. Owner only.
    function removeSigner(address signer) external;

    /// @notice Set how many distinct signers a batch needs (1..signerCount). Owner only.
    function setThreshold(uint8 threshold) external;

    /// @notice Propose a new owner, who must accept. Owner only. The zero address cancels.
    function transferOwnership(address newOwner) external;

    /// @notice Accept a proposed ownership transfer. Pending owner only.
    function acceptOwnership() external;

    // ------------------------------------------------------------------ reads

    /// @notice The EIP-712 digest signers sign for a batch of packed reports: the typed data
    ///         `Batch(Report[] reports)` of the unpacked reports.
    function batchDigest(bytes calldata reports) external view returns (bytes32);

    /// @notice The index of a registered feed. Reverts with UnknownFeed.
    function feedIndex(bytes32 feedId) external view returns (uint16);

    /// @notice Registration data and state of a feed. Reverts with UnknownFeed.
    function feedInfo(bytes32 feedId) external view returns (FeedInfo memory);

    /// @notice The latest value of a feed; all zero before the first update. Reverts with UnknownFeed.
    /// @return price      Scaled by 10^decimals.
    /// @return decimals   The feed's decimals.
    /// @return roundId    The latest round.
    /// @return observedAt Unix seconds of the observations behind the value.
    /// @return updatedAt  Unix seconds of the block that stored it.
    function latest(bytes32 feedId)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt);

    /// @notice Like `latest`, but reverts with NoData before the first update and with StalePrice when
    ///         the value was stored more than `maxAge` seconds ago.
    function latestNoOlderThan(bytes32 feedId, uint256 maxAge)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt);

    /// @notice A past round of a feed (one of the last 64). Reverts with RoundNotAvailable otherwise.
    function getRoundData(bytes32 feedId, uint32 roundId)
        external
        view
        returns (int128 price, uint32 observedAt, uint32 updatedAt);

    /// @notice The latest round of the feed at `index` (for adapters): round 0 means no data yet (or no
    ///         feed at that index: the lookup is skipped to keep adapter reads cheap).
    function latestByIndex(uint16 index)
        external
        view
        returns (uint32 roundId, int128 price, uint32 observedAt, uint32 updatedAt);

    /// @notice A past round of the feed at `index` (for adapters). Reverts with RoundNotAvailable (also
    ///         for an index with no feed).
    function roundByIndex(uint16 index, uint32 roundId)
        external
        view
        returns (int128 price, uint32 observedAt, uint32 updatedAt);

    /// @notice Whether an address is an authorized signer.
    function isSigner(address signer) external view returns (bool);

    /// @notice The authorized signers, ascending.
    function signers() external view returns (address[] memory);

    /// @notice The number of distinct signatures a batch needs.
    function threshold() external view returns (uint8);

    /// @notice The number of authorized signers.
    function signerCount() external view returns (uint8);

    /// @notice Whether every submission is paused.
    function paused() external view returns (bool);

    /// @notice Number of registered feeds.
    function feedCount() external view returns (uint16);

    /// @notice How far (seconds) a report's observation time may run ahead of the block.
    function maxFutureSkew() external view returns (uint32);

    /// @notice The contract owner.
    function owner() external view returns (address);

    /// @notice The proposed next owner, if any.
    function pendingOwner() external view returns (address);

    /// @notice The EIP-712 domain separator.
    function domainSeparator() external view returns (bytes32);
}
