// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IOracleHub
/// @notice Interface of the multi-feed price oracle: batches of reports signed (EIP-712) by a quorum of
///         authorized signers update many feeds in one transaction; anyone may relay a valid batch.
/// @dev Feed ids are `keccak256(bytes(pair))`, for example `keccak256("BTC/USD")`.
interface IOracleHub {
    /// @notice One feed's new value, as signed by the oracle's signers.
    /// @param feedId   keccak256 of the pair name, e.g. keccak256("BTC/USD").
    /// @param roundId  Strictly greater than the feed's current round.
    /// @param price    Price scaled by 10^decimals of the feed.
    /// @param observedAt Unix seconds of the observations the price was computed from.
    struct Report {
        bytes32 feedId;
        uint32 roundId;
        int128 price;
        uint40 observedAt;
    }

    /// @notice A secp256k1 signature over the batch digest; v is 27 or 28, s in the lower half order.
    struct Signature {
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The feed is not registered.
    error UnknownFeed(bytes32 feedId);
    /// @notice The feed is registered already.
    error FeedExists(bytes32 feedId);
    /// @notice The batch holds no report.
    error EmptyBatch();
    /// @notice Fewer distinct authorized signatures than the threshold.
    error BelowThreshold(uint256 valid, uint256 threshold);
    /// @notice A signature is malformed (bad v, high s, or unrecoverable).
    error InvalidSignature(uint256 index);
    /// @notice The recovered address is not an authorized signer.
    error UnauthorizedSigner(address signer);
    /// @notice Signers must be strictly ascending by address (this also rejects duplicates).
    error SignersNotAscending(address previous, address next);
    /// @notice The report's round is not greater than the feed's current round.
    error StaleRound(bytes32 feedId, uint32 given, uint32 current);
    /// @notice The report's observation time is older than the stored one.
    error ObservationTooOld(bytes32 feedId, uint40 given, uint40 current);
    /// @notice The report's observation time is ahead of the block beyond the allowed skew.
    error ObservationInFuture(bytes32 feedId, uint40 given, uint256 blockTime);
    /// @notice The report's price is zero or negative.
    error NonPositivePrice(bytes32 feedId, int128 price);
    /// @notice Threshold must be within 1..signerCount.
    error InvalidThreshold(uint256 threshold, uint256 signerCount);
    /// @notice The zero address cannot be a signer or owner.
    error ZeroAddress();

    /// @notice A feed was registered.
    event FeedAdded(bytes32 indexed feedId, uint8 decimals, string description);
    /// @notice A signer was authorized (true) or removed (false).
    event SignerSet(address indexed signer, bool authorized);
    /// @notice The signature threshold changed.
    event ThresholdSet(uint256 threshold);
    /// @notice A feed took a new value.
    event PriceUpdated(bytes32 indexed feedId, uint32 indexed roundId, int128 price, uint40 observedAt);

    /// @notice Verify a signed batch and apply every report in it. Reverts the whole batch if any
    ///         report or the signature set is invalid (the submitter re-signs without the bad report).
    /// @param reports    The reports; each feed at most once.
    /// @param signatures Signatures over `batchDigest(reports)`, ordered by ascending signer address.
    function submit(Report[] calldata reports, Signature[] calldata signatures) external;

    /// @notice The EIP-712 digest that signers sign for a batch.
    function batchDigest(Report[] calldata reports) external view returns (bytes32);

    /// @notice The latest value of a feed. Reverts with UnknownFeed for an unregistered feed.
    /// @return price      Scaled by 10^decimals; zero before the first update.
    /// @return decimals   The feed's decimals.
    /// @return roundId    The latest round (0 before the first update).
    /// @return observedAt Unix seconds of the observations behind the value.
    /// @return updatedAt  Unix seconds of the block that stored it.
    function latest(bytes32 feedId)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint40 observedAt, uint40 updatedAt);

    /// @notice Register a feed. Owner only.
    function addFeed(bytes32 feedId, uint8 decimals, string calldata description) external;

    /// @notice Authorize or remove a signer. Owner only.
    function setSigner(address signer, bool authorized) external;

    /// @notice Set how many distinct signers a batch needs. Owner only.
    function setThreshold(uint256 threshold) external;

    /// @notice Whether an address is an authorized signer.
    function isSigner(address signer) external view returns (bool);

    /// @notice The number of distinct signatures a batch needs.
    function threshold() external view returns (uint256);

    /// @notice How far (seconds) a report's observation time may run ahead of the block.
    function maxFutureSkew() external view returns (uint256);

    /// @notice The contract owner.
    function owner() external view returns (address);
}
