// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IOracleHub} from "./IOracleHub.sol";

/// @title OracleHub
/// @notice Holds many price feeds, updated by batches of reports signed (EIP-712) by at least
///         `threshold` distinct authorized signers. Any account may relay a validly signed batch.
/// @dev One storage slot per feed holds the whole latest value, so an update costs one SSTORE.
contract OracleHub is IOracleHub {
    /// @dev Latest value of a feed, packed into one slot (16 + 4 + 5 + 5 + 1 + 1 = 32 bytes).
    struct Feed {
        int128 price;
        uint32 roundId;
        uint40 observedAt;
        uint40 updatedAt;
        uint8 decimals;
        bool exists;
    }

    bytes32 private constant REPORT_TYPEHASH =
        keccak256("Report(bytes32 feedId,uint32 roundId,int128 price,uint40 observedAt)");
    bytes32 private constant BATCH_TYPEHASH = keccak256(
        "Batch(Report[] reports)Report(bytes32 feedId,uint32 roundId,int128 price,uint40 observedAt)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("OracleHub");
    bytes32 private constant VERSION_HASH = keccak256("1");
    /// @dev secp256k1 order / 2: signatures with a larger s are malleable copies and are rejected.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    /// @inheritdoc IOracleHub
    address public owner;
    /// @inheritdoc IOracleHub
    uint256 public threshold;
    /// @inheritdoc IOracleHub
    uint256 public immutable maxFutureSkew;
    /// @notice Number of authorized signers.
    uint256 public signerCount;

    mapping(address => bool) private _signers;
    mapping(bytes32 => Feed) private _feeds;

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @param signers_       Initial authorized signers.
    /// @param threshold_     Distinct signatures needed per batch (1..signers_.length).
    /// @param maxFutureSkew_ Seconds a report's observation time may run ahead of the block.
    constructor(address[] memory signers_, uint256 threshold_, uint256 maxFutureSkew_) {
        owner = msg.sender;
        maxFutureSkew = maxFutureSkew_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        for (uint256 i = 0; i < signers_.length; ++i) {
            _setSigner(signers_[i], true);
        }
        _setThreshold(threshold_);
    }

    /// @inheritdoc IOracleHub
    function submit(Report[] calldata reports, Signature[] calldata signatures) external {
        if (reports.length == 0) revert EmptyBatch();
        _verifySignatures(_batchDigest(reports), signatures);
        for (uint256 i = 0; i < reports.length; ++i) {
            _apply(reports[i]);
        }
    }

    /// @inheritdoc IOracleHub
    function batchDigest(Report[] calldata reports) external view returns (bytes32) {
        return _batchDigest(reports);
    }

    /// @inheritdoc IOracleHub
    function latest(bytes32 feedId)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint40 observedAt, uint40 updatedAt)
    {
        Feed memory f = _feeds[feedId];
        if (!f.exists) revert UnknownFeed(feedId);
        return (f.price, f.decimals, f.roundId, f.observedAt, f.updatedAt);
    }

    /// @inheritdoc IOracleHub
    function addFeed(bytes32 feedId, uint8 decimals, string calldata description) external onlyOwner {
        if (_feeds[feedId].exists) revert FeedExists(feedId);
        _feeds[feedId] =
            Feed({price: 0, roundId: 0, observedAt: 0, updatedAt: 0, decimals: decimals, exists: true});
        emit FeedAdded(feedId, decimals, description);
    }

    /// @inheritdoc IOracleHub
    function setSigner(address signer, bool authorized) external onlyOwner {
        _setSigner(signer, authorized);
        if (threshold > signerCount) revert InvalidThreshold(threshold, signerCount);
    }

    /// @inheritdoc IOracleHub
    function setThreshold(uint256 threshold_) external onlyOwner {
        _setThreshold(threshold_);
    }

    /// @inheritdoc IOracleHub
    function isSigner(address signer) external view returns (bool) {
        return _signers[signer];
    }

    /// @notice The EIP-712 domain separator (recomputed if the chain id changes after a fork).
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _apply(Report calldata r) private {
        Feed storage f = _feeds[r.feedId];
        Feed memory cur = f;
        if (!cur.exists) revert UnknownFeed(r.feedId);
        if (r.roundId <= cur.roundId) revert StaleRound(r.feedId, r.roundId, cur.roundId);
        if (r.observedAt < cur.observedAt) revert ObservationTooOld(r.feedId, r.observedAt, cur.observedAt);
        if (r.observedAt > block.timestamp + maxFutureSkew) {
            revert ObservationInFuture(r.feedId, r.observedAt, block.timestamp);
        }
        if (r.price <= 0) revert NonPositivePrice(r.feedId, r.price);
        f.price = r.price;
        f.roundId = r.roundId;
        f.observedAt = r.observedAt;
        f.updatedAt = uint40(block.timestamp);
        emit PriceUpdated(r.feedId, r.roundId, r.price, r.observedAt);
    }

    function _verifySignatures(bytes32 digest, Signature[] calldata signatures) private view {
        uint256 needed = threshold;
        if (signatures.length < needed) revert BelowThreshold(signatures.length, needed);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            Signature calldata sig = signatures[i];
            if ((sig.v != 27 && sig.v != 28) || uint256(sig.s) > HALF_ORDER) revert InvalidSignature(i);
            address signer = ecrecover(digest, sig.v, sig.r, sig.s);
            if (signer == address(0)) revert InvalidSignature(i);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            if (!_signers[signer]) revert UnauthorizedSigner(signer);
            previous = signer;
        }
    }

    function _batchDigest(Report[] calldata reports) private view returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](reports.length);
        for (uint256 i = 0; i < reports.length; ++i) {
            Report calldata r = reports[i];
            hashes[i] = keccak256(abi.encode(REPORT_TYPEHASH, r.feedId, r.roundId, r.price, r.observedAt));
        }
        bytes32 structHash = keccak256(abi.encode(BATCH_TYPEHASH, keccak256(abi.encodePacked(hashes))));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _setSigner(address signer, bool authorized) private {
        if (signer == address(0)) revert ZeroAddress();
        if (_signers[signer] == authorized) return;
        _signers[signer] = authorized;
        if (authorized) {
            ++signerCount;
        } else {
            --signerCount;
        }
        emit SignerSet(signer, authorized);
    }

    function _setThreshold(uint256 threshold_) private {
        if (threshold_ == 0 || threshold_ > signerCount) revert InvalidThreshold(threshold_, signerCount);
        threshold = threshold_;
        emit ThresholdSet(threshold_);
    }
}
