// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IOracleHub} from "./IOracleHub.sol";

/// @title OracleHub
/// @notice Many price feeds updated by batches of reports signed (EIP-712) by a quorum of authorized
///         signers. See IOracleHub for the interface and the batch policy.
/// @dev Storage is laid out so that an update touches as little as possible:
///      - `_config[i >> 2]`: read-only config of 4 feeds per slot, 64 bits each:
///        flags (8: bit0 exists, bit1 paused) | decimals (8) | min bound (16-bit m, 8-bit e) |
///        max bound (16-bit m, 8-bit e), a bound being m * 10^e.
///      - `_rounds[i >> 2]`: latest round (32) and observation time (32) of 4 feeds per slot.
///      - `_ring[i][round % 64]`: one slot per stored round, which is also the latest value:
///        price (128) | round (32) | observedAt (32) | updatedAt (32) | marker (32, always 1).
///      All three are written non-zero at registration, so an update never pays for a fresh slot.
contract OracleHub is IOracleHub {
    struct Meta {
        bytes32 feedId;
        uint32 heartbeat;
        string description;
    }

    uint256 private constant HISTORY = 64;
    uint256 private constant MASK64 = 0xFFFFFFFFFFFFFFFF;
    uint256 private constant MASK32 = 0xFFFFFFFF;
    uint256 private constant FLAG_EXISTS = 1;
    uint256 private constant FLAG_PAUSED = 2;
    uint256 private constant MAX_BOUND_EXP = 33;

    bytes32 private constant REPORT_TYPEHASH =
        keccak256("Report(uint16 feedIndex,uint32 roundId,int128 price,uint32 observedAt)");
    bytes32 private constant BATCH_TYPEHASH = keccak256(
        "Batch(Report[] reports)Report(uint16 feedIndex,uint32 roundId,int128 price,uint32 observedAt)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("OracleHub");
    bytes32 private constant VERSION_HASH = keccak256("1");
    /// @dev secp256k1 order / 2: signatures with a larger s are malleable twins and are rejected.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    /// @inheritdoc IOracleHub
    uint32 public immutable maxFutureSkew;
    /// @inheritdoc IOracleHub
    address public owner;
    /// @inheritdoc IOracleHub
    address public pendingOwner;
    /// @inheritdoc IOracleHub
    uint8 public threshold;
    /// @inheritdoc IOracleHub
    uint8 public signerCount;
    /// @inheritdoc IOracleHub
    bool public paused;
    /// @inheritdoc IOracleHub
    uint16 public feedCount;

    mapping(address => bool) private _signers;
    mapping(bytes32 => uint256) private _indexPlusOne;
    mapping(uint256 => Meta) private _meta;
    mapping(uint256 => uint256) private _config;
    mapping(uint256 => uint256) private _rounds;
    mapping(uint256 => uint256[HISTORY]) private _ring;

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @param owner_         The owner (may differ from the deployer).
    /// @param signers_       Initial authorized signers.
    /// @param threshold_     Distinct signatures needed per batch (1..signers_.length).
    /// @param maxFutureSkew_ Seconds a report's observation time may run ahead of the block.
    constructor(address owner_, address[] memory signers_, uint8 threshold_, uint32 maxFutureSkew_) {
        if (owner_ == address(0)) revert ZeroAddress();
        owner = owner_;
        emit OwnershipTransferred(address(0), owner_);
        maxFutureSkew = maxFutureSkew_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        for (uint256 i = 0; i < signers_.length; ++i) {
            _addSigner(signers_[i]);
        }
        _setThreshold(threshold_);
    }

    // ================================================================== submit

    /// @inheritdoc IOracleHub
    /// @dev The loop runs in assembly over the raw calldata words, which are exactly the words the
    ///      digest hashes: a non-canonical encoding changes the digest and fails the signature check,
    ///      so no separate ABI validation is needed.
    function submit(Report[] calldata reports, Signature[] calldata signatures) external {
        if (reports.length == 0) revert EmptyBatch();
        if (paused) revert HubPaused();
        _verifySignatures(_batchDigest(reports), signatures, threshold);
        _apply(reports);
    }

    /// @dev Applies each report or skips it with its reason (see the batch policy in IOracleHub).
    function _apply(Report[] calldata reports) private {
        // Constants the loop needs, kept in memory to spare stack slots: [0] event topic of
        // PriceUpdated, [1] of ReportRejected, [2] the skip reasons' selectors (code k at bits
        // 32k..32k+31), [3] the latest observation time allowed, [4] scratch for event data.
        uint256[5] memory k = [
            uint256(PriceUpdated.selector),
            uint256(ReportRejected.selector),
            uint256(uint32(UnknownFeedIndex.selector)) | (uint256(uint32(FeedPaused.selector)) << 32)
                | (uint256(uint32(StaleRound.selector)) << 64)
                | (uint256(uint32(ObservationTooOld.selector)) << 96)
                | (uint256(uint32(ObservationInFuture.selector)) << 128)
                | (uint256(uint32(OutOfBounds.selector)) << 160),
            block.timestamp + maxFutureSkew,
            0
        ];
        assembly ("memory-safe") {
            let group := not(0)
            let configWord := 0
            let roundSlot := 0
            let roundWord := 0
            let dirty := 0
            for { let p := reports.offset } lt(p, add(reports.offset, shl(7, reports.length))) {
                p := add(p, 0x80)
            } {
                let index := calldataload(p)
                let round := calldataload(add(p, 0x20))
                // price at p + 0x40 and observedAt at p + 0x60 are read where used (stack depth).
                if iszero(eq(shr(2, index), group)) {
                    if dirty { sstore(roundSlot, roundWord) }
                    group := shr(2, index)
                    mstore(0x00, group)
                    mstore(0x20, _config.slot)
                    configWord := sload(keccak256(0x00, 0x40))
                    mstore(0x20, _rounds.slot)
                    roundSlot := keccak256(0x00, 0x40)
                    roundWord := sload(roundSlot)
                    dirty := 0
                }
                let shift := shl(6, and(index, 3))
                let config := shr(shift, configWord)
                // Reason codes: 0 unknown feed, 1 paused, 2 stale round, 3 too old, 4 in future,
                // 5 out of bounds, 6 none (the first failing check, in this order, wins).
                let reason := 6
                switch and(config, 3)
                case 1 {
                    if iszero(
                        and(
                            sgt(
                                calldataload(add(p, 0x40)),
                                mul(and(shr(16, config), 0xFFFF), exp(10, and(shr(32, config), 0xFF)))
                            ),
                            slt(
                                calldataload(add(p, 0x40)),
                                mul(and(shr(40, config), 0xFFFF), exp(10, and(shr(56, config), 0xFF)))
                            )
                        )
                    ) { reason := 5 }
                    if gt(calldataload(add(p, 0x60)), mload(add(k, 0x60))) { reason := 4 }
                    if lt(calldataload(add(p, 0x60)), and(shr(shift, roundWord), 0xFFFFFFFF)) {
                        reason := 3
                    }
                    if iszero(gt(round, and(shr(add(shift, 32), roundWord), 0xFFFFFFFF))) {
                        reason := 2
                    }
                }
                case 0 { reason := 0 }
                default { reason := 1 }
                if lt(reason, 6) {
                    mstore(0x00, round)
                    mstore(0x20, shl(224, and(shr(shl(5, reason), mload(add(k, 0x40))), 0xFFFFFFFF)))
                    log2(0x00, 0x40, mload(add(k, 0x20)), index)
                    continue
                }
                roundWord := or(
                    and(roundWord, not(shl(shift, 0xFFFFFFFFFFFFFFFF))),
                    shl(shift, or(shl(32, round), calldataload(add(p, 0x60))))
                )
                dirty := 1
                mstore(0x00, index)
                mstore(0x20, _ring.slot)
                sstore(
                    add(keccak256(0x00, 0x40), and(round, 63)),
                    or(
                        or(shl(128, calldataload(add(p, 0x40))), shl(96, round)),
                        or(shl(64, calldataload(add(p, 0x60))), or(shl(32, timestamp()), 1))
                    )
                )
                // Event data: round (bits 224..255) | observedAt (192..223) | price (0..127).
                mstore(
                    add(k, 0x80),
                    or(
                        or(shl(224, round), shl(192, calldataload(add(p, 0x60)))),
                        and(calldataload(add(p, 0x40)), 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF)
                    )
                )
                log2(add(k, 0x80), 0x20, mload(k), index)
            }
            if dirty { sstore(roundSlot, roundWord) }
        }
    }

    /// @dev Decodes a bound stored as 16-bit mantissa and 8-bit exponent in the low 24 bits.
    function _bound(uint256 packed) private pure returns (int256) {
        return int256((packed & 0xFFFF) * 10 ** ((packed >> 16) & 0xFF));
    }

    function _verifySignatures(bytes32 digest, Signature[] calldata signatures, uint256 needed) private view {
        uint256 count = signatures.length;
        if (count < needed) revert BelowThreshold(count, needed);
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            Signature calldata sig = signatures[i];
            if ((sig.v != 27 && sig.v != 28) || uint256(sig.s) > HALF_ORDER) revert InvalidSignature(i);
            address signer = ecrecover(digest, sig.v, sig.r, sig.s);
            if (signer == address(0)) revert InvalidSignature(i);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            if (!_signers[signer]) revert UnauthorizedSigner(signer);
            previous = signer;
        }
    }

    /// @dev EIP-712 digest of `Batch(Report[] reports)`: each report's struct hash is keccak256 of its
    ///      type hash and its four calldata words; the array's encoding is keccak256 of those hashes.
    function _batchDigest(Report[] calldata reports) private view returns (bytes32 digest) {
        bytes32 separator = domainSeparator();
        bytes32 reportTypehash = REPORT_TYPEHASH;
        bytes32 batchTypehash = BATCH_TYPEHASH;
        assembly ("memory-safe") {
            let scratch := mload(0x40)
            let hashes := add(scratch, 0xa0)
            let n := reports.length
            mstore(scratch, reportTypehash)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                calldatacopy(add(scratch, 0x20), add(reports.offset, shl(7, i)), 0x80)
                mstore(add(hashes, shl(5, i)), keccak256(scratch, 0xa0))
            }
            mstore(add(scratch, 0x20), keccak256(hashes, shl(5, n)))
            mstore(scratch, batchTypehash)
            let structHash := keccak256(scratch, 0x40)
            mstore(scratch, 0x1901)
            mstore(add(scratch, 0x20), separator)
            mstore(add(scratch, 0x40), structHash)
            digest := keccak256(add(scratch, 0x1e), 0x42)
        }
    }

    // ================================================================== admin

    /// @inheritdoc IOracleHub
    function addFeed(
        bytes32 feedId,
        uint8 decimals,
        int256 minPrice,
        int256 maxPrice,
        uint32 heartbeat,
        string calldata description
    ) external onlyOwner returns (uint16 index) {
        if (_indexPlusOne[feedId] != 0) revert FeedExists(feedId);
        if (decimals > 36) revert InvalidDecimals(decimals);
        uint256 count = feedCount;
        if (count == type(uint16).max) revert TooManyFeeds();
        uint256 bounds = _encodeBounds(minPrice, maxPrice);
        index = uint16(count);
        feedCount = uint16(count + 1);
        _indexPlusOne[feedId] = count + 1;
        _meta[count] = Meta({feedId: feedId, heartbeat: heartbeat, description: description});
        uint256 shift = (count & 3) << 6;
        uint256 entry = FLAG_EXISTS | (uint256(decimals) << 8) | (bounds << 16);
        _config[count >> 2] |= entry << shift;
        // Observation time 1 (not 0) keeps the round slot non-zero from the start.
        _rounds[count >> 2] |= uint256(1) << shift;
        uint256[HISTORY] storage ring = _ring[count];
        for (uint256 i = 0; i < HISTORY; ++i) {
            ring[i] = 1;
        }
        emit FeedAdded(feedId, index, decimals, minPrice, maxPrice, heartbeat, description);
    }

    /// @inheritdoc IOracleHub
    function setBounds(bytes32 feedId, int256 minPrice, int256 maxPrice) external onlyOwner {
        uint256 index = _index(feedId);
        uint256 shift = ((index & 3) << 6) + 16;
        uint256 word = _config[index >> 2];
        word = (word & ~(uint256(0xFFFFFFFFFFFF) << shift)) | (_encodeBounds(minPrice, maxPrice) << shift);
        _config[index >> 2] = word;
        emit BoundsSet(feedId, minPrice, maxPrice);
    }

    /// @inheritdoc IOracleHub
    function setFeedPaused(bytes32 feedId, bool paused_) external onlyOwner {
        uint256 index = _index(feedId);
        uint256 bit = FLAG_PAUSED << ((index & 3) << 6);
        uint256 word = _config[index >> 2];
        _config[index >> 2] = paused_ ? word | bit : word & ~bit;
        emit FeedPausedSet(feedId, paused_);
    }

    /// @inheritdoc IOracleHub
    function setPaused(bool paused_) external onlyOwner {
        paused = paused_;
        emit HubPausedSet(paused_);
    }

    /// @inheritdoc IOracleHub
    function addSigner(address signer) external onlyOwner {
        _addSigner(signer);
    }

    /// @inheritdoc IOracleHub
    function removeSigner(address signer) external onlyOwner {
        if (!_signers[signer]) revert NotASigner(signer);
        uint8 remaining = signerCount - 1;
        if (threshold > remaining) revert InvalidThreshold(threshold, remaining);
        _signers[signer] = false;
        signerCount = remaining;
        emit SignerRemoved(signer);
    }

    /// @inheritdoc IOracleHub
    function setThreshold(uint8 threshold_) external onlyOwner {
        _setThreshold(threshold_);
    }

    /// @inheritdoc IOracleHub
    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    /// @inheritdoc IOracleHub
    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    // ================================================================== reads

    /// @inheritdoc IOracleHub
    function batchDigest(Report[] calldata reports) external view returns (bytes32) {
        return _batchDigest(reports);
    }

    /// @inheritdoc IOracleHub
    function feedIndex(bytes32 feedId) external view returns (uint16) {
        return uint16(_index(feedId));
    }

    /// @inheritdoc IOracleHub
    function feedInfo(bytes32 feedId) external view returns (FeedInfo memory info) {
        uint256 index = _index(feedId);
        uint256 config = _configOf(index);
        Meta storage meta = _meta[index];
        info = FeedInfo({
            feedId: feedId,
            index: uint16(index),
            decimals: uint8(config >> 8),
            paused: config & FLAG_PAUSED != 0,
            minPrice: _bound(config >> 16),
            maxPrice: _bound(config >> 40),
            heartbeat: meta.heartbeat,
            description: meta.description
        });
    }

    /// @inheritdoc IOracleHub
    function latest(bytes32 feedId)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt)
    {
        uint256 index = _index(feedId);
        decimals = uint8(_configOf(index) >> 8);
        (roundId, price, observedAt, updatedAt) = _latest(index);
    }

    /// @inheritdoc IOracleHub
    function latestNoOlderThan(bytes32 feedId, uint256 maxAge)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt)
    {
        uint256 index = _index(feedId);
        decimals = uint8(_configOf(index) >> 8);
        (roundId, price, observedAt, updatedAt) = _latest(index);
        if (roundId == 0) revert NoData(feedId);
        if (block.timestamp - updatedAt > maxAge) revert StalePrice(feedId, updatedAt, maxAge);
    }

    /// @inheritdoc IOracleHub
    function getRoundData(bytes32 feedId, uint32 roundId)
        external
        view
        returns (int128 price, uint32 observedAt, uint32 updatedAt)
    {
        return _round(_index(feedId), roundId);
    }

    /// @inheritdoc IOracleHub
    function latestByIndex(uint16 index)
        external
        view
        returns (uint32 roundId, int128 price, uint32 observedAt, uint32 updatedAt)
    {
        return _latest(index);
    }

    /// @inheritdoc IOracleHub
    function roundByIndex(uint16 index, uint32 roundId)
        external
        view
        returns (int128 price, uint32 observedAt, uint32 updatedAt)
    {
        return _round(index, roundId);
    }

    /// @inheritdoc IOracleHub
    function isSigner(address signer) external view returns (bool) {
        return _signers[signer];
    }

    /// @inheritdoc IOracleHub
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    // ================================================================== internals

    function _index(bytes32 feedId) private view returns (uint256) {
        uint256 plusOne = _indexPlusOne[feedId];
        if (plusOne == 0) revert UnknownFeed(feedId);
        return plusOne - 1;
    }

    function _configOf(uint256 index) private view returns (uint256) {
        return (_config[index >> 2] >> ((index & 3) << 6)) & MASK64;
    }

    function _latest(uint256 index)
        private
        view
        returns (uint32 roundId, int128 price, uint32 observedAt, uint32 updatedAt)
    {
        roundId = uint32(_rounds[index >> 2] >> (((index & 3) << 6) + 32));
        if (roundId == 0) return (0, 0, 0, 0);
        uint256 entry = _ring[index][roundId & (HISTORY - 1)];
        return (roundId, int128(uint128(entry >> 128)), uint32(entry >> 64), uint32(entry >> 32));
    }

    function _round(uint256 index, uint32 roundId)
        private
        view
        returns (int128 price, uint32 observedAt, uint32 updatedAt)
    {
        uint256 entry = _ring[index][roundId & (HISTORY - 1)];
        if (roundId == 0 || uint32(entry >> 96) != roundId) {
            uint256 latestRound = uint32(_rounds[index >> 2] >> (((index & 3) << 6) + 32));
            revert RoundNotAvailable(_meta[index].feedId, roundId, latestRound);
        }
        return (int128(uint128(entry >> 128)), uint32(entry >> 64), uint32(entry >> 32));
    }

    /// @dev Packs validated bounds: min (24 bits) then max (24 bits), each 16-bit m and 8-bit e.
    function _encodeBounds(int256 minPrice, int256 maxPrice) private pure returns (uint256) {
        if (minPrice < 0 || maxPrice <= minPrice) revert InvalidBounds(minPrice, maxPrice);
        (bool okMin, uint256 min) = _encodeBound(uint256(minPrice));
        (bool okMax, uint256 max) = _encodeBound(uint256(maxPrice));
        if (!okMin || !okMax) revert InvalidBounds(minPrice, maxPrice);
        return min | (max << 24);
    }

    function _encodeBound(uint256 value) private pure returns (bool ok, uint256 packed) {
        uint256 exp = 0;
        while (value > 0xFFFF) {
            if (value % 10 != 0) return (false, 0);
            value /= 10;
            ++exp;
        }
        if (exp > MAX_BOUND_EXP) return (false, 0);
        return (true, value | (exp << 16));
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _addSigner(address signer) private {
        if (signer == address(0)) revert ZeroAddress();
        if (_signers[signer]) revert SignerExists(signer);
        _signers[signer] = true;
        ++signerCount;
        emit SignerAdded(signer);
    }

    function _setThreshold(uint8 threshold_) private {
        if (threshold_ == 0 || threshold_ > signerCount) revert InvalidThreshold(threshold_, signerCount);
        threshold = threshold_;
        emit ThresholdSet(threshold_);
    }
}
