// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {
    AggregatorV3Interface
} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @notice Test fixture mimicking Liquity v1's `PriceFeed` (a stablecoin's collateral price): each fetch
///         reads the current round (`latestRoundData`) and the one before it (`getRoundData(roundId - 1)`),
///         both inside try/catch so that a reverting feed counts as broken. A response is valid when the
///         call succeeded, `roundId != 0`, the timestamp is set and not in the future, and the answer is
///         positive. The feed is distrusted, and the last good price is returned (the price freezes),
///         when either response is invalid, when the current one is older than `TIMEOUT`, or when the
///         price moved more than 50% between the two rounds; it is trusted again once a fetch passes all
///         checks. Liquity falls back to a second oracle (Tellor) where this fixture freezes. Written for
///         these tests, after the pattern; not Liquity's code.
contract LiquityStylePriceFeed {
    enum Status {
        oracleWorking,
        oracleUntrusted
    }

    struct Response {
        bool success;
        uint80 roundId;
        int256 answer;
        uint256 timestamp;
        uint8 decimals;
    }

    uint256 public constant TIMEOUT = 4 hours;
    /// @dev 50%, with 18 decimals.
    uint256 public constant MAX_PRICE_DEVIATION_FROM_PREVIOUS_ROUND = 5e17;
    uint256 public constant TARGET_DIGITS = 18;

    AggregatorV3Interface public immutable priceAggregator;
    uint256 public lastGoodPrice;
    Status public status;

    event LastGoodPriceUpdated(uint256 lastGoodPrice);
    event PriceFeedStatusChanged(Status newStatus);

    error OracleNotWorkingAtDeployment();

    /// @dev Like Liquity's set-up: refuses a feed that is not working now (two valid rounds, fresh).
    constructor(AggregatorV3Interface priceAggregator_) {
        priceAggregator = priceAggregator_;
        Response memory current = _current();
        Response memory previous = _previous(current.roundId, current.decimals);
        if (_broken(current) || _broken(previous) || _frozen(current)) revert OracleNotWorkingAtDeployment();
        _storeGoodPrice(current);
    }

    /// @notice The price with 18 decimals: the feed's when it passes every check, else the last good one.
    function fetchPrice() external returns (uint256) {
        Response memory current = _current();
        Response memory previous = _previous(current.roundId, current.decimals);
        if (_broken(current) || _broken(previous) || _frozen(current) || _changedTooMuch(current, previous)) {
            _setStatus(Status.oracleUntrusted);
            return lastGoodPrice;
        }
        _setStatus(Status.oracleWorking);
        return _storeGoodPrice(current);
    }

    function _current() internal view returns (Response memory r) {
        try priceAggregator.decimals() returns (uint8 d) {
            r.decimals = d;
        } catch {
            return r;
        }
        try priceAggregator.latestRoundData() returns (
            uint80 roundId, int256 answer, uint256, uint256 updatedAt, uint80
        ) {
            r.roundId = roundId;
            r.answer = answer;
            r.timestamp = updatedAt;
            r.success = true;
        } catch {}
    }

    function _previous(uint80 currentRoundId, uint8 decimals) internal view returns (Response memory r) {
        if (currentRoundId == 0) return r;
        try priceAggregator.getRoundData(currentRoundId - 1) returns (
            uint80 roundId, int256 answer, uint256, uint256 updatedAt, uint80
        ) {
            r.roundId = roundId;
            r.answer = answer;
            r.timestamp = updatedAt;
            r.decimals = decimals;
            r.success = true;
        } catch {}
    }

    function _broken(Response memory r) internal view returns (bool) {
        return
            !r.success || r.roundId == 0 || r.timestamp == 0 || r.timestamp > block.timestamp || r.answer <= 0;
    }

    function _frozen(Response memory r) internal view returns (bool) {
        return block.timestamp - r.timestamp > TIMEOUT;
    }

    function _changedTooMuch(Response memory current, Response memory previous) internal pure returns (bool) {
        uint256 a = _scaled(current);
        uint256 b = _scaled(previous);
        (uint256 lo, uint256 hi) = a < b ? (a, b) : (b, a);
        return (hi - lo) * 1e18 / hi > MAX_PRICE_DEVIATION_FROM_PREVIOUS_ROUND;
    }

    function _scaled(Response memory r) internal pure returns (uint256) {
        uint256 answer = uint256(r.answer);
        if (r.decimals <= TARGET_DIGITS) return answer * 10 ** (TARGET_DIGITS - r.decimals);
        return answer / 10 ** (r.decimals - TARGET_DIGITS);
    }

    function _storeGoodPrice(Response memory r) internal returns (uint256 price) {
        price = _scaled(r);
        lastGoodPrice = price;
        emit LastGoodPriceUpdated(price);
    }

    function _setStatus(Status s) internal {
        if (status != s) {
            status = s;
            emit PriceFeedStatusChanged(s);
        }
    }
}
