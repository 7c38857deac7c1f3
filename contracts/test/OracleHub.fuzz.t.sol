// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HubFixture} from "./utils/HubFixture.sol";
import {Vm} from "./utils/Test.sol";
import {IOracleHub} from "../src/IOracleHub.sol";
import {Sig, Packing} from "./utils/Packing.sol";

/// @notice Fuzz tests: random batches against a reference model of the rules (including which skip
///         reason wins when a report fails several checks), random signer subsets and signer-set
///         changes, random rounds and times, random bounds.
contract OracleHubFuzzTest is HubFixture {
    uint256 internal constant FEEDS = 6;
    int256 internal constant MIN = 100e8;
    int256 internal constant MAX = 1_000_000e8;

    // The model of the hub's per-feed state.
    uint32[FEEDS] internal modelRound;
    uint32[FEEDS] internal modelObserved;
    int128[FEEDS] internal modelPrice;
    bool[FEEDS] internal modelPaused;

    function setUp() public override {
        super.setUp();
        vm.startPrank(OWNER);
        for (uint256 i = 2; i < FEEDS; ++i) {
            hub.addFeed(keccak256(abi.encodePacked("FUZZ", i)), 8, MIN, MAX, 60, MAX_AGE, "fuzz");
        }
        hub.setBounds(BTC, MIN, MAX);
        hub.setBounds(ETH, MIN, MAX);
        vm.stopPrank();
    }

    function _feedId(uint256 i) internal pure returns (bytes32) {
        if (i == 0) return BTC;
        if (i == 1) return ETH;
        return keccak256(abi.encodePacked("FUZZ", i));
    }

    /// @dev The reference rules (IOracleHub's batch policy, written plainly): the selector of the reason
    ///      `r` is skipped with, the first failing check in the documented order, or 0 if it applies.
    function _reason(
        IOracleHub.Report memory r,
        bool known,
        bool paused_,
        uint32 latestRound,
        uint32 latestObservedAt,
        uint256 maxReportAge
    ) internal view returns (bytes4) {
        if (!known) return IOracleHub.UnknownFeedIndex.selector;
        if (paused_) return IOracleHub.FeedPaused.selector;
        if (uint256(r.roundId) != uint256(latestRound) + 1) return IOracleHub.UnexpectedRound.selector;
        if (r.observedAt < latestObservedAt) return IOracleHub.ObservationTooOld.selector;
        if (r.observedAt > block.timestamp + SKEW) return IOracleHub.ObservationInFuture.selector;
        if (uint256(r.observedAt) + maxReportAge < block.timestamp) return IOracleHub.ReportTooOld.selector;
        if (r.price <= MIN || r.price >= MAX) return IOracleHub.OutOfBounds.selector;
        return bytes4(0);
    }

    /// @dev The model's verdict on `r` (0: applied), applying it if so.
    function _modelApply(IOracleHub.Report memory r) internal returns (bytes4 reason) {
        uint256 i = r.feedIndex;
        bool known = i < FEEDS;
        reason = known
            ? _reason(r, true, modelPaused[i], modelRound[i], modelObserved[i], MAX_AGE)
            : _reason(r, false, false, 0, 0, MAX_AGE);
        if (reason != bytes4(0)) return reason;
        modelRound[i] = r.roundId;
        modelObserved[i] = r.observedAt;
        modelPrice[i] = r.price;
    }

    /// @dev Mostly the next round; otherwise a repeat, a gap, round 0 or the last round.
    function _pickRound(uint32 current, uint256 s) internal pure returns (uint32) {
        uint256 pick = s % 12;
        unchecked {
            if (pick < 9) return current + 1;
            if (pick == 9) return current;
            if (pick == 10) return current + 2 + uint32((s >> 8) % 3);
        }
        return (s >> 8) % 2 == 0 ? 0 : type(uint32).max;
    }

    /// @dev Mostly a price inside the bounds; otherwise one on or beyond them, or negative.
    function _pickPrice(uint256 s) internal pure returns (int128) {
        int128[8] memory bad =
            [int128(MIN), int128(MAX), int128(MIN - 1), int128(MAX + 1), -200e8, type(int128).min, -1, 0];
        if (s % 4 == 0) return bad[(s >> 2) % 8];
        return int128(int256(bound(s >> 8, uint256(MIN) + 1, uint256(MAX) - 1)));
    }

    /// @dev An observation time: often a valid one (not before `latestAt`, not older than `maxReportAge`,
    ///      not beyond the skew), else one that fails a chosen time check, else anywhere around now.
    function _pickTime(uint256 s, uint32 latestAt, uint32 maxReportAge) internal view returns (uint32) {
        uint256 pick = s % 7;
        uint256 x = (s >> 8) % 5;
        uint256 lo = block.timestamp - maxReportAge;
        if (lo < latestAt) lo = latestAt;
        uint256 hi = block.timestamp + SKEW;
        if (pick < 3 && lo <= hi) return uint32(bound(s >> 16, lo, hi));
        if (pick == 3 && latestAt > 10) return uint32(latestAt - 1 - x); // going back
        if (pick == 4) return uint32(hi + 1 + x); // too far ahead
        if (pick == 5) return uint32(block.timestamp - maxReportAge - 1 - x); // too old a report
        return uint32(bound(s >> 16, block.timestamp - 500, block.timestamp + 200));
    }

    /// @dev Each batch is pushed with `submit` or pulled with `updateAndRead`, at random.
    function testFuzz_RandomBatchesFollowTheModel(uint256 seed) public {
        for (uint256 batch = 0; batch < 3; ++batch) {
            seed = uint256(keccak256(abi.encode(seed, batch)));
            // Now and then a feed is paused or resumed between batches.
            if (seed % 4 == 0) {
                uint256 f = (seed >> 8) % FEEDS;
                modelPaused[f] = !modelPaused[f];
                vm.prank(OWNER);
                hub.setFeedPaused(_feedId(f), modelPaused[f]);
            }
            uint256 n = 1 + (seed >> 16) % 8;
            IOracleHub.Report[] memory reports = new IOracleHub.Report[](n);
            bytes4[] memory reasons = new bytes4[](n);
            for (uint256 j = 0; j < n; ++j) {
                uint256 s = uint256(keccak256(abi.encode(seed, j)));
                // Index: a feed of either config slot, mostly; sometimes an index with no feed, in a slot
                // that has feeds (6, 7) or not (300).
                uint16 index = uint16(s % 16);
                if (index >= FEEDS) {
                    index = index < 14 ? index % uint16(FEEDS) : index == 14 ? uint16(FEEDS) + 1 : 300;
                }
                bool known = index < FEEDS;
                uint32 round = _pickRound(known ? modelRound[index] : 0, s >> 8);
                int128 price = _pickPrice(s >> 24);
                uint32 at = _pickTime(s >> 128, known ? modelObserved[index] : 0, MAX_AGE);
                reports[j] =
                    IOracleHub.Report({feedIndex: index, roundId: round, price: price, observedAt: at});
                // The model applies in order, as the hub does: a later report for the same feed sees the
                // earlier one's effect.
                reasons[j] = _modelApply(reports[j]);
            }
            Sig[] memory sigs = _sign(reports, _quorum());
            // Pushed (submit) or pulled (updateAndRead, reading a random feed): the same rules apply.
            bool pulled = (seed >> 40) % 2 == 1;
            uint256 read = (seed >> 48) % FEEDS;
            vm.recordLogs();
            if (pulled) {
                (int128 p,, uint32 r, uint32 o, uint32 u) =
                    hub.updateAndRead(Packing.pack(reports), Packing.pack(sigs), _feedId(read));
                _assertLogs(reports, reasons);
                vm.assertEq(int256(p), int256(modelPrice[read]));
                vm.assertEq(uint256(r), uint256(modelRound[read]));
                vm.assertEq(uint256(o), uint256(modelObserved[read]));
                (,,,, uint32 updatedAt) = hub.latest(_feedId(read));
                vm.assertEq(uint256(u), uint256(updatedAt));
            } else {
                _send(reports, sigs);
                _assertLogs(reports, reasons);
            }
            for (uint256 i = 0; i < FEEDS; ++i) {
                (int128 price,, uint32 round, uint32 observedAt,) = hub.latest(_feedId(i));
                vm.assertEq(uint256(round), uint256(modelRound[i]));
                vm.assertEq(int256(price), int256(modelPrice[i]));
                vm.assertEq(uint256(observedAt), uint256(modelObserved[i]));
            }
            vm.warp(block.timestamp + (seed >> 200) % 30);
        }
    }

    /// @dev One event per report, in order: PriceUpdated with the model's value, or ReportRejected with
    ///      the model's reason.
    function _assertLogs(IOracleHub.Report[] memory reports, bytes4[] memory reasons) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(logs.length, reports.length, "one event per report");
        for (uint256 j = 0; j < logs.length; ++j) {
            IOracleHub.Report memory r = reports[j];
            vm.assertEq(logs[j].emitter, address(hub));
            vm.assertEq(logs[j].topics[1], bytes32(uint256(r.feedIndex)));
            if (reasons[j] == bytes4(0)) {
                vm.assertEq(logs[j].topics[0], IOracleHub.PriceUpdated.selector);
                vm.assertEq(
                    keccak256(logs[j].data), keccak256(abi.encode(_update(r.roundId, r.price, r.observedAt)))
                );
            } else {
                vm.assertEq(logs[j].topics[0], IOracleHub.ReportRejected.selector);
                vm.assertEq(keccak256(logs[j].data), keccak256(abi.encode(r.roundId, reasons[j])));
            }
        }
    }

    /// @dev The state a precedence case runs against.
    struct FeedState {
        bool known;
        bool paused;
        uint32 maxReportAge;
        uint32 latestRound;
        uint32 latestAt;
    }

    /// @dev A random report for the precedence test: each check fails with some probability,
    ///      independently, so that a report often fails several at once.
    function _precedenceCase(uint256 seed, uint32 stored)
        internal
        returns (IOracleHub.Report memory r, FeedState memory f)
    {
        uint16[8] memory indexes = [BTC_I, BTC_I, BTC_I, BTC_I, BTC_I, ETH_I, uint16(FEEDS), uint16(300)];
        r.feedIndex = indexes[(seed >> 64) % 8];
        f.known = r.feedIndex < FEEDS;
        f.paused = f.known && (seed >> 68) % 6 == 0;
        f.maxReportAge = uint32(bound(seed >> 72, 1, 400));
        if (f.known) {
            vm.startPrank(OWNER);
            hub.setMaxReportAge(_feedId(r.feedIndex), f.maxReportAge);
            if (f.paused) hub.setFeedPaused(_feedId(r.feedIndex), true);
            vm.stopPrank();
        }
        f.latestRound = r.feedIndex == BTC_I ? 1 : 0;
        f.latestAt = r.feedIndex == BTC_I ? stored : 0;
        r.price = _pickPrice(seed >> 96);
        r.roundId = _pickRound(f.latestRound, seed >> 160);
        r.observedAt = _pickTime(seed >> 176, f.latestAt, f.maxReportAge);
    }

    function testFuzz_SkipReasonPrecedence(uint256 seed) public {
        // BTC holds round 1 observed at `stored`; the other feeds have no data.
        uint32 stored = uint32(bound(seed, T0 - MAX_AGE, T0 + SKEW));
        _submit(_one(BTC_I, 1, 200e8, stored));
        // The clock moves on, or back (the only way to be at once behind the stored observation and
        // too far ahead of the block).
        vm.warp(bound(seed >> 32, T0 - 200, T0 + 400));
        (IOracleHub.Report memory r, FeedState memory f) = _precedenceCase(seed, stored);
        bytes4 expected = _reason(r, f.known, f.paused, f.latestRound, f.latestAt, f.maxReportAge);

        IOracleHub.Report[] memory reports = new IOracleHub.Report[](1);
        reports[0] = r;
        Sig[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        if (expected == bytes4(0)) {
            emit IOracleHub.PriceUpdated(r.feedIndex, _update(r.roundId, r.price, r.observedAt));
        } else {
            emit IOracleHub.ReportRejected(r.feedIndex, r.roundId, expected);
        }
        _send(reports, sigs);
        if (f.known) {
            (int128 price,, uint32 round,,) = hub.latest(_feedId(r.feedIndex));
            vm.assertEq(uint256(round), expected == bytes4(0) ? r.roundId : f.latestRound);
            if (expected == bytes4(0)) vm.assertEq(int256(price), int256(r.price));
        }
    }

    function testFuzz_SignerSubsets(uint8 mask, uint8 threshold) public {
        // Pool: the 3 authorized signers and 2 strangers.
        uint256[5] memory pool = [keys[0], keys[1], keys[2], uint256(0xBAD1), uint256(0xBAD2)];
        threshold = uint8(bound(threshold, 1, 3));
        vm.prank(OWNER);
        hub.setThreshold(threshold);
        uint256 count;
        bool allAuthorized = true;
        for (uint256 i = 0; i < 5; ++i) {
            if (mask & (1 << i) != 0) {
                ++count;
                if (i >= 3) allAuthorized = false;
            }
        }
        uint256[] memory chosen = new uint256[](count);
        uint256 c;
        for (uint256 i = 0; i < 5; ++i) {
            if (mask & (1 << i) != 0) chosen[c++] = pool[i];
        }
        // Sort by signer address, as the contract requires.
        for (uint256 i = 0; i < count; ++i) {
            for (uint256 j = i + 1; j < count; ++j) {
                if (vm.addr(chosen[j]) < vm.addr(chosen[i])) (chosen[i], chosen[j]) = (chosen[j], chosen[i]);
            }
        }
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 200e8, _now());
        Sig[] memory sigs = _sign(reports, chosen);
        bool ok = _call(reports, sigs);
        vm.assertEq(ok, allAuthorized && count >= threshold);
        vm.assertEq(_round(BTC), ok ? 1 : 0);
    }

    function testFuzz_OnlyNextRoundApplies(uint32 first, uint32 second, uint8 mode) public {
        // Reach round `first` (the rounds before it are written straight into storage).
        first = uint32(bound(first, 1, type(uint32).max));
        uint32 t = _now() - 10;
        if (first > 1) _forceRound(BTC_I, first - 1, t);
        _submit(_one(BTC_I, first, 200e8, t));
        vm.assertEq(_round(BTC), first);
        // A quarter of the runs try first + 1 (which wraps to 0 at the last round), a quarter a round
        // within 3 of `first` (wrapping as uint32), the rest any round.
        unchecked {
            if (mode % 4 == 0) second = first + 1;
            else if (mode % 4 == 1) second = first + uint32(bound(second, 0, 6)) - 3;
        }
        bool next = uint256(second) == uint256(first) + 1;
        IOracleHub.Report[] memory b = _one(BTC_I, second, 300e8, _now());
        Sig[] memory sigs = _sign(b, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        if (next) emit IOracleHub.PriceUpdated(BTC_I, _update(second, 300e8, _now()));
        else emit IOracleHub.ReportRejected(BTC_I, second, IOracleHub.UnexpectedRound.selector);
        _send(b, sigs);
        vm.assertEq(_round(BTC), next ? second : first);
        vm.assertEq(_price(BTC), next ? int256(300e8) : int256(200e8));
    }

    function testFuzz_ObservationTimeWindow(uint32 stored, uint32 wait, int64 delta) public {
        stored = uint32(bound(stored, block.timestamp - MAX_AGE, block.timestamp + SKEW));
        _submit(_one(BTC_I, 1, 200e8, stored));
        vm.assertEq(_round(BTC), 1);
        vm.warp(block.timestamp + bound(wait, 0, 3 * MAX_AGE));
        uint256 span = 2 * (MAX_AGE + SKEW);
        delta = int64(int256(bound(uint256(int256(delta) + int256(span)), 0, 2 * span)) - int256(span));
        uint32 at = uint32(uint256(int256(uint256(stored)) + delta));
        bytes4 expected = bytes4(0);
        if (at < stored) expected = IOracleHub.ObservationTooOld.selector;
        else if (at > block.timestamp + SKEW) expected = IOracleHub.ObservationInFuture.selector;
        else if (uint256(at) + MAX_AGE < block.timestamp) expected = IOracleHub.ReportTooOld.selector;
        IOracleHub.Report[] memory b = _one(BTC_I, 2, 300e8, at);
        Sig[] memory sigs = _sign(b, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        if (expected == bytes4(0)) emit IOracleHub.PriceUpdated(BTC_I, _update(2, 300e8, at));
        else emit IOracleHub.ReportRejected(BTC_I, 2, expected);
        _send(b, sigs);
        vm.assertEq(_round(BTC), expected == bytes4(0) ? 2 : 1);
    }

    function testFuzz_BoundsRoundTripOrRevert(uint256 mantissa, uint8 exponent, uint256 extra) public {
        mantissa = bound(mantissa, 0, 70_000);
        exponent = uint8(bound(exponent, 0, 36));
        int256 minPrice = int256(mantissa * 10 ** exponent);
        int256 maxPrice = minPrice + int256(bound(extra, 1, 1e30));
        bytes32 id = keccak256(abi.encode(mantissa, exponent, extra));
        vm.prank(OWNER);
        try hub.addFeed(id, 8, minPrice, maxPrice, 60, MAX_AGE, "x") {
            IOracleHub.FeedInfo memory info = hub.feedInfo(id);
            vm.assertEq(info.minPrice, minPrice);
            vm.assertEq(info.maxPrice, maxPrice);
        } catch (bytes memory reason) {
            vm.assertTrue(bytes4(reason) == IOracleHub.InvalidBounds.selector);
            // Rejected only when a bound has no 16-bit mantissa with an exponent up to 33.
            vm.assertFalse(_representable(uint256(minPrice)) && _representable(uint256(maxPrice)));
        }
    }

    function _representable(uint256 v) internal pure returns (bool) {
        uint256 e;
        while (v > 0xFFFF) {
            if (v % 10 != 0) return false;
            v /= 10;
            ++e;
        }
        return e <= 33;
    }

    function testFuzz_SignerListStaysSorted(uint256 seed) public {
        // Pool: the 3 initial signers, then 5 more keys; `member` models the signer set.
        uint256[8] memory pool = [
            keys[0],
            keys[1],
            keys[2],
            uint256(0x51),
            uint256(0x52),
            uint256(0x53),
            uint256(0x54),
            uint256(0x55)
        ];
        bool[8] memory member = [true, true, true, false, false, false, false, false];
        uint256 count = 3;
        vm.prank(OWNER);
        hub.setThreshold(1);
        for (uint256 step = 0; step < 12; ++step) {
            uint256 k = uint256(keccak256(abi.encode(seed, step))) % 8;
            address a = vm.addr(pool[k]);
            vm.prank(OWNER);
            if (member[k] && count > 1) {
                hub.removeSigner(a);
                member[k] = false;
                --count;
            } else if (!member[k]) {
                hub.addSigner(a);
                member[k] = true;
                ++count;
            } else {
                vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 1, 0));
                hub.removeSigner(a);
            }
            address[] memory expected = new address[](count);
            uint256 e;
            for (uint256 i = 0; i < 8; ++i) {
                if (member[i]) expected[e++] = vm.addr(pool[i]);
                else vm.assertFalse(hub.isSigner(vm.addr(pool[i])));
            }
            _assertSigners(expected);
        }
        // Every current signer, ascending, signs: the merge walk must find each of them.
        uint256[] memory all = new uint256[](count);
        uint256 c;
        for (uint256 i = 0; i < 8; ++i) {
            if (member[i]) all[c++] = pool[i];
        }
        for (uint256 i = 0; i < count; ++i) {
            for (uint256 j = i + 1; j < count; ++j) {
                if (vm.addr(all[j]) < vm.addr(all[i])) (all[i], all[j]) = (all[j], all[i]);
            }
        }
        vm.prank(OWNER);
        hub.setThreshold(uint8(count));
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 200e8, _now());
        _send(reports, _sign(reports, all));
        vm.assertEq(_round(BTC), 1);
    }
}
