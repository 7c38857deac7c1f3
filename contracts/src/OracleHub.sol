// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IOracleHub} from "./IOracleHub.sol";

/// @title OracleHub
/// @notice Many price feeds updated by batches of reports signed (EIP-712) by a quorum of authorized
///         signers. See IOracleHub for the interface, the packed wire format and the batch policy.
/// @dev Storage is laid out so that an update touches as little as possible:
///      - `_config[i >> 2]`: read-only config of 4 feeds per slot, 64 bits each: flags (2: bit0 exists,
///        bit1 paused) | decimals (6) | min bound (16-bit m, 6-bit e) | max bound (16-bit m, 6-bit e) |
///        maxReportAge (12, seconds), a bound being m * 10^e.
///      - `_rounds[i >> 2]`: latest round (32) and observation time (32) of 4 feeds per slot.
///      - the ring, slot `RING_BASE + i * 64 + round % 64`: one slot per stored round, which is also the
///        latest value: price (128) | round (32) | observedAt (32) | updatedAt (32) | marker (32,
///        always 1). A namespaced region (ERC-7201 id `oraclehub.storage.ring`) rather than a mapping,
///        so that an update does not hash to find its slot.
///      All three are written non-zero at registration, so an update never pays for a fresh slot.
contract OracleHub is IOracleHub {
    struct Meta {
        bytes32 feedId;
        uint32 heartbeat;
        string description;
    }

    uint256 private constant HISTORY = 64;
    uint256 private constant REPORT_SIZE = 26;
    uint256 private constant SIGNATURE_SIZE = 65;
    uint256 private constant MASK64 = 0xFFFFFFFFFFFFFFFF;
    uint256 private constant FLAG_EXISTS = 1;
    uint256 private constant FLAG_PAUSED = 2;
    uint256 private constant MAX_BOUND_EXP = 33;
    uint256 private constant MAX_REPORT_AGE_LIMIT = 4095;
    /// @dev Bit offsets inside a feed's 64-bit config entry.
    uint256 private constant DECIMALS_SHIFT = 2;
    uint256 private constant BOUNDS_SHIFT = 8;
    uint256 private constant AGE_SHIFT = 52;
    /// @dev ERC-7201: keccak256(abi.encode(uint256(keccak256("oraclehub.storage.ring")) - 1)) & ~0xff.
    uint256 private constant RING_BASE = 0xb9c859efba35406f06d4b5faddc2aad22dc87ced63527e1e7bd26db280948900;

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
    /// @dev The authorized signers, ascending, as the code of a data contract (a STOP byte, then 20
    ///      bytes per signer): one cold EXTCODECOPY reads them all, where a mapping would cost a cold
    ///      SLOAD per signature. Shares a slot with the four fields below, which `submit` reads too.
    address private _signerList;
    /// @inheritdoc IOracleHub
    uint8 public threshold;
    /// @inheritdoc IOracleHub
    uint8 public signerCount;
    /// @inheritdoc IOracleHub
    bool public paused;
    /// @inheritdoc IOracleHub
    uint16 public feedCount;
    /// @inheritdoc IOracleHub
    address public pendingOwner;

    mapping(bytes32 => uint256) private _indexPlusOne;
    mapping(uint256 => Meta) private _meta;
    mapping(uint256 => uint256) private _config;
    mapping(uint256 => uint256) private _rounds;

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
        address[] memory list = new address[](0);
        for (uint256 i = 0; i < signers_.length; ++i) {
            list = _inserted(list, signers_[i]);
        }
        _writeSigners(list);
        _setThreshold(threshold_);
    }

    // ================================================================== submit

    /// @inheritdoc IOracleHub
    function submit(bytes calldata reports, bytes calldata signatures) external {
        _verifyAndApply(reports, signatures);
    }

    /// @inheritdoc IOracleHub
    function updateAndRead(bytes calldata reports, bytes calldata signatures, bytes32 feedId)
        external
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt)
    {
        uint256 index = _index(feedId);
        _verifyAndApply(reports, signatures);
        decimals = uint8((_configOf(index) >> DECIMALS_SHIFT) & 0x3F);
        (roundId, price, observedAt, updatedAt) = _latest(index);
    }

    /// @dev What `submit` does, and `updateAndRead` first: checks the batch's shape and its signature
    ///      set (any fault reverts), then applies each report or skips it with its reason. The signer
    ///      list, threshold, signer count and pause flag share one slot, read here once.
    function _verifyAndApply(bytes calldata reports, bytes calldata signatures) private {
        uint256 count = reports.length / REPORT_SIZE;
        if (count * REPORT_SIZE != reports.length || signatures.length % SIGNATURE_SIZE != 0) {
            revert MalformedBatch(reports.length, signatures.length);
        }
        if (count == 0) revert EmptyBatch();
        address list;
        uint256 needed;
        uint256 listed;
        uint256 isPaused;
        assembly ("memory-safe") {
            // The four share one slot; should a change of the storage layout split them, every batch
            // fails here (a constant condition: it costs nothing otherwise).
            if or(
                or(xor(threshold.slot, _signerList.slot), xor(signerCount.slot, _signerList.slot)),
                xor(paused.slot, _signerList.slot)
            ) { invalid() }
            let word := sload(_signerList.slot)
            list := and(shr(shl(3, _signerList.offset), word), 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF)
            needed := and(shr(shl(3, threshold.offset), word), 0xFF)
            listed := and(shr(shl(3, signerCount.offset), word), 0xFF)
            isPaused := and(shr(shl(3, paused.offset), word), 0xFF)
        }
        if (isPaused != 0) revert HubPaused();
        _verifySignatures(_batchDigest(reports), signatures, needed, list, listed);
        _apply(reports);
    }

    /// @dev Applies each report or skips it with its reason (see the batch policy in IOracleHub).
    ///      A packed report read as one word `w` (26 bytes, then the next record's first 6): feedIndex is
    ///      `w >> 240`, roundId `(w >> 208) & 0xFFFFFFFF`, price `signextend(15, w >> 80)` (its low 128
    ///      bits are the two's complement), observedAt `(w >> 48) & 0xFFFFFFFF`.
    function _apply(bytes calldata reports) private {
        // Constants the loop needs, kept in memory to spare stack slots: [0] event topic of
        // PriceUpdated, [1] of ReportRejected, [2] the skip reasons' selectors (code k at bits
        // 32k..32k+31), [3] the latest observation time allowed, [4] scratch for event data.
        uint256[5] memory k = [
            uint256(PriceUpdated.selector),
            uint256(ReportRejected.selector),
            uint256(uint32(UnknownFeedIndex.selector)) | (uint256(uint32(FeedPaused.selector)) << 32)
                | (uint256(uint32(UnexpectedRound.selector)) << 64)
                | (uint256(uint32(ObservationTooOld.selector)) << 96)
                | (uint256(uint32(ObservationInFuture.selector)) << 128)
                | (uint256(uint32(ReportTooOld.selector)) << 160)
                | (uint256(uint32(OutOfBounds.selector)) << 192),
            block.timestamp + maxFutureSkew,
            0
        ];
        assembly ("memory-safe") {
            let group := not(0)
            let configWord := 0
            let roundSlot := 0
            let roundWord := 0
            let dirty := 0
            for { let p := reports.offset } lt(p, add(reports.offset, reports.length)) { p := add(p, 26) } {
                let w := calldataload(p)
                let index := shr(240, w)
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
                let round := and(shr(208, w), 0xFFFFFFFF)
                let at := and(shr(48, w), 0xFFFFFFFF)
                // Reason codes: 0 unknown feed, 1 paused, 2 round not latest + 1, 3 observation time going
                // back, 4 too far ahead, 5 older than maxReportAge, 6 out of bounds, 7 none (the first
                // failing check, in this order, wins: later assignments below override earlier ones).
                let reason := 7
                switch and(config, 3)
                case 1 {
                    let price := signextend(15, shr(80, w))
                    if iszero(
                        and(
                            sgt(price, mul(and(shr(8, config), 0xFFFF), exp(10, and(shr(24, config), 0x3F)))),
                            slt(price, mul(and(shr(30, config), 0xFFFF), exp(10, and(shr(46, config), 0x3F))))
                        )
                    ) { reason := 6 }
                    if lt(add(at, and(shr(52, config), 0xFFF)), timestamp()) { reason := 5 }
                    if gt(at, mload(add(k, 0x60))) { reason := 4 }
                    if lt(at, and(shr(shift, roundWord), 0xFFFFFFFF)) { reason := 3 }
                    if iszero(eq(round, add(and(shr(add(shift, 32), roundWord), 0xFFFFFFFF), 1))) {
                        reason := 2
                    }
                }
                case 0 { reason := 0 }
                default { reason := 1 }
                if lt(reason, 7) {
                    mstore(0x00, round)
                    mstore(0x20, shl(224, and(shr(shl(5, reason), mload(add(k, 0x40))), 0xFFFFFFFF)))
                    log2(0x00, 0x40, mload(add(k, 0x20)), index)
                    continue
                }
                roundWord := or(
                    and(roundWord, not(shl(shift, 0xFFFFFFFFFFFFFFFF))),
                    shl(shift, or(shl(32, round), at))
                )
                dirty := 1
                let price128 := and(shr(80, w), 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF)
                sstore(
                    add(add(RING_BASE, shl(6, index)), and(round, 63)),
                    or(or(shl(128, price128), shl(96, round)), or(shl(64, at), or(shl(32, timestamp()), 1)))
                )
                // Event data: round (bits 224..255) | observedAt (192..223) | price (0..127).
                mstore(add(k, 0x80), or(or(shl(224, round), shl(192, at)), price128))
                log2(add(k, 0x80), 0x20, mload(k), index)
            }
            if dirty { sstore(roundSlot, roundWord) }
        }
    }

    /// @dev Decodes a bound stored as 16-bit mantissa and 6-bit exponent in the low 22 bits.
    function _bound(uint256 packed) private pure returns (int256) {
        return int256((packed & 0xFFFF) * 10 ** ((packed >> 16) & 0x3F));
    }

    /// @dev Checks `signatures` (packed, 65 bytes each) over `digest`: at least `needed`, each valid,
    ///      from authorized signers in strictly ascending order (which also rules out duplicates). The
    ///      signer list (`listed` addresses, ascending) is read once; signers are matched by a merge walk.
    function _verifySignatures(
        bytes32 digest,
        bytes calldata signatures,
        uint256 needed,
        address list,
        uint256 listed
    ) private view {
        uint256 count = signatures.length / SIGNATURE_SIZE;
        if (count < needed) revert BelowThreshold(count, needed);
        uint256 table;
        assembly ("memory-safe") {
            table := mload(0x40)
            extcodecopy(list, table, 1, mul(listed, 20))
            // Reserve the table and one word past it (entries are read with mload).
            mstore(0x40, add(table, add(mul(listed, 20), 0x20)))
        }
        address previous = address(0);
        uint256 next = 0;
        for (uint256 i = 0; i < count; ++i) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                let o := add(signatures.offset, mul(i, 65))
                r := calldataload(o)
                s := calldataload(add(o, 0x20))
                v := byte(0, calldataload(add(o, 0x40)))
            }
            if ((v != 27 && v != 28) || uint256(s) > HALF_ORDER) revert InvalidSignature(i);
            address signer = ecrecover(digest, v, r, s);
            if (signer == address(0)) revert InvalidSignature(i);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            address candidate = address(0);
            while (candidate < signer) {
                if (next == listed) revert UnauthorizedSigner(signer);
                assembly ("memory-safe") {
                    candidate := shr(96, mload(add(table, mul(next, 20))))
                }
                ++next;
            }
            if (candidate != signer) revert UnauthorizedSigner(signer);
            previous = signer;
        }
    }

    /// @dev EIP-712 digest of `Batch(Report[] reports)` over packed reports: each report's struct hash is
    ///      keccak256 of its type hash and its four fields as ABI words (the price sign-extended); the
    ///      array's encoding is keccak256 of those hashes.
    function _batchDigest(bytes calldata reports) private view returns (bytes32 digest) {
        bytes32 separator = domainSeparator();
        bytes32 reportTypehash = REPORT_TYPEHASH;
        bytes32 batchTypehash = BATCH_TYPEHASH;
        assembly ("memory-safe") {
            let scratch := mload(0x40)
            let hashes := add(scratch, 0xa0)
            let n := div(reports.length, 26)
            mstore(scratch, reportTypehash)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let w := calldataload(add(reports.offset, mul(i, 26)))
                mstore(add(scratch, 0x20), shr(240, w))
                mstore(add(scratch, 0x40), and(shr(208, w), 0xFFFFFFFF))
                mstore(add(scratch, 0x60), signextend(15, shr(80, w)))
                mstore(add(scratch, 0x80), and(shr(48, w), 0xFFFFFFFF))
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
        uint32 maxReportAge,
        string calldata description
    ) external onlyOwner returns (uint16 index) {
        if (_indexPlusOne[feedId] != 0) revert FeedExists(feedId);
        if (decimals > 36) revert InvalidDecimals(decimals);
        _checkMaxReportAge(maxReportAge);
        uint256 count = feedCount;
        if (count == type(uint16).max) revert TooManyFeeds();
        uint256 bounds = _encodeBounds(minPrice, maxPrice);
        index = uint16(count);
        feedCount = uint16(count + 1);
        _indexPlusOne[feedId] = count + 1;
        _meta[count] = Meta({feedId: feedId, heartbeat: heartbeat, description: description});
        uint256 shift = (count & 3) << 6;
        uint256 entry = FLAG_EXISTS | (uint256(decimals) << DECIMALS_SHIFT) | (bounds << BOUNDS_SHIFT)
            | (uint256(maxReportAge) << AGE_SHIFT);
        _config[count >> 2] |= entry << shift;
        // Observation time 1 (not 0) keeps the round slot non-zero from the start.
        _rounds[count >> 2] |= uint256(1) << shift;
        uint256 ring = _ringSlot(count, 0);
        for (uint256 i = 0; i < HISTORY; ++i) {
            assembly ("memory-safe") {
                sstore(add(ring, i), 1)
            }
        }
        emit FeedAdded(feedId, index, decimals, minPrice, maxPrice, heartbeat, maxReportAge, description);
    }

    /// @inheritdoc IOracleHub
    function setBounds(bytes32 feedId, int256 minPrice, int256 maxPrice) external onlyOwner {
        uint256 index = _index(feedId);
        uint256 shift = ((index & 3) << 6) + BOUNDS_SHIFT;
        uint256 word = _config[index >> 2];
        word = (word & ~(uint256(0xFFFFFFFFFFF) << shift)) | (_encodeBounds(minPrice, maxPrice) << shift);
        _config[index >> 2] = word;
        emit BoundsSet(feedId, minPrice, maxPrice);
    }

    /// @inheritdoc IOracleHub
    function setMaxReportAge(bytes32 feedId, uint32 maxReportAge) external onlyOwner {
        uint256 index = _index(feedId);
        _checkMaxReportAge(maxReportAge);
        uint256 shift = ((index & 3) << 6) + AGE_SHIFT;
        uint256 word = _config[index >> 2];
        _config[index >> 2] = (word & ~(uint256(0xFFF) << shift)) | (uint256(maxReportAge) << shift);
        emit MaxReportAgeSet(feedId, maxReportAge);
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
        _writeSigners(_inserted(_readSigners(), signer));
    }

    /// @inheritdoc IOracleHub
    function removeSigner(address signer) external onlyOwner {
        address[] memory list = _readSigners();
        uint256 remaining = list.length - 1;
        address[] memory kept = new address[](remaining);
        uint256 k = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == signer) continue;
            if (k == remaining) revert NotASigner(signer);
            kept[k++] = list[i];
        }
        if (k != remaining) revert NotASigner(signer);
        if (threshold > remaining) revert InvalidThreshold(threshold, remaining);
        _writeSigners(kept);
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
    function batchDigest(bytes calldata reports) external view returns (bytes32) {
        if (reports.length % REPORT_SIZE != 0) revert MalformedBatch(reports.length, 0);
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
            decimals: uint8((config >> DECIMALS_SHIFT) & 0x3F),
            paused: config & FLAG_PAUSED != 0,
            minPrice: _bound(config >> BOUNDS_SHIFT),
            maxPrice: _bound(config >> (BOUNDS_SHIFT + 22)),
            heartbeat: meta.heartbeat,
            maxReportAge: uint32((config >> AGE_SHIFT) & 0xFFF),
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
        decimals = uint8((_configOf(index) >> DECIMALS_SHIFT) & 0x3F);
        (roundId, price, observedAt, updatedAt) = _latest(index);
    }

    /// @inheritdoc IOracleHub
    function latestNoOlderThan(bytes32 feedId, uint256 maxAge)
        external
        view
        returns (int128 price, uint8 decimals, uint32 roundId, uint32 observedAt, uint32 updatedAt)
    {
        uint256 index = _index(feedId);
        decimals = uint8((_configOf(index) >> DECIMALS_SHIFT) & 0x3F);
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
        address[] memory list = _readSigners();
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == signer) return true;
        }
        return false;
    }

    /// @inheritdoc IOracleHub
    function signers() external view returns (address[] memory) {
        return _readSigners();
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
        uint256 entry = _ringEntry(index, roundId);
        return (roundId, int128(uint128(entry >> 128)), uint32(entry >> 64), uint32(entry >> 32));
    }

    function _round(uint256 index, uint32 roundId)
        private
        view
        returns (int128 price, uint32 observedAt, uint32 updatedAt)
    {
        uint256 entry = _ringEntry(index, roundId);
        if (roundId == 0 || uint32(entry >> 96) != roundId) {
            uint256 latestRound = uint32(_rounds[index >> 2] >> (((index & 3) << 6) + 32));
            revert RoundNotAvailable(_meta[index].feedId, roundId, latestRound);
        }
        return (int128(uint128(entry >> 128)), uint32(entry >> 64), uint32(entry >> 32));
    }

    /// @dev The ring slot of round `roundId` of the feed at `index`.
    function _ringSlot(uint256 index, uint256 roundId) private pure returns (uint256) {
        return RING_BASE + (index << 6) + (roundId & (HISTORY - 1));
    }

    function _ringEntry(uint256 index, uint256 roundId) private view returns (uint256 entry) {
        assembly ("memory-safe") {
            entry := sload(add(add(RING_BASE, shl(6, index)), and(roundId, 63)))
        }
    }

    /// @dev Packs validated bounds: min (22 bits) then max (22 bits), each 16-bit m and 6-bit e.
    function _encodeBounds(int256 minPrice, int256 maxPrice) private pure returns (uint256) {
        if (minPrice < 0 || maxPrice <= minPrice) revert InvalidBounds(minPrice, maxPrice);
        (bool okMin, uint256 min) = _encodeBound(uint256(minPrice));
        (bool okMax, uint256 max) = _encodeBound(uint256(maxPrice));
        if (!okMin || !okMax) revert InvalidBounds(minPrice, maxPrice);
        return min | (max << 22);
    }

    function _checkMaxReportAge(uint32 maxReportAge) private pure {
        if (maxReportAge == 0 || maxReportAge > MAX_REPORT_AGE_LIMIT) {
            revert InvalidMaxReportAge(maxReportAge);
        }
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

    /// @dev `list` (ascending) with `signer` inserted in order; emits SignerAdded.
    function _inserted(address[] memory list, address signer) private returns (address[] memory out) {
        if (signer == address(0)) revert ZeroAddress();
        out = new address[](list.length + 1);
        uint256 j = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == signer) revert SignerExists(signer);
            if (j == i && list[i] > signer) out[j++] = signer;
            out[j++] = list[i];
        }
        if (j == list.length) out[j] = signer;
        emit SignerAdded(signer);
    }

    /// @dev The signer list, ascending.
    function _readSigners() private view returns (address[] memory list) {
        uint256 n = signerCount;
        bytes memory raw = _signerList.code;
        list = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            address a;
            assembly ("memory-safe") {
                a := shr(96, mload(add(raw, add(0x21, mul(i, 20)))))
            }
            list[i] = a;
        }
    }

    /// @dev Stores `list` (ascending, at most 255) as the code of a new data contract: creation code
    ///      `PUSH4 size DUP1 PUSH1 14 PUSH1 0 CODECOPY PUSH1 0 RETURN` followed by the runtime, a STOP byte
    ///      and the addresses.
    function _writeSigners(address[] memory list) private {
        if (list.length > type(uint8).max) revert TooManySigners(list.length);
        bytes memory runtime = hex"00";
        for (uint256 i = 0; i < list.length; ++i) {
            runtime = bytes.concat(runtime, bytes20(list[i]));
        }
        bytes memory init =
            abi.encodePacked(hex"63", uint32(runtime.length), hex"80600e6000396000f3", runtime);
        address pointer;
        assembly ("memory-safe") {
            pointer := create(0, add(init, 0x20), mload(init))
        }
        if (pointer == address(0)) revert ZeroAddress();
        _signerList = pointer;
        signerCount = uint8(list.length);
    }

    function _setThreshold(uint8 threshold_) private {
        if (threshold_ == 0 || threshold_ > signerCount) revert InvalidThreshold(threshold_, signerCount);
        threshold = threshold_;
        emit ThresholdSet(threshold_);
    }
}
